// SPDX-License-Identifier: MIT
#include "src/util/scrub.hpp"

#include <algorithm>
#include <string_view>

namespace vstash::util {

std::string scrub_secrets(std::string text, std::vector<std::string> secrets) {
  std::sort(secrets.begin(), secrets.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  constexpr std::string_view k_mask = "***";
  for (const std::string& s : secrets) {
    if (s.empty()) {
      continue;
    }
    for (size_t at = text.find(s); at != std::string::npos; at = text.find(s, at + k_mask.size())) {
      text.replace(at, s.size(), k_mask);
    }
  }
  return text;
}

}  // namespace vstash::util
