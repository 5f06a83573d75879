// SPDX-License-Identifier: MIT
#include "tests/fuzz/fuzz.hpp"

#include <cstdio>
#include <cstdlib>

namespace vstash::fuzz {

void check_message(const vstash::Error& e, std::string_view input) {
  constexpr std::string_view k_nlohmann_tag = "[json.exception";
  const std::string_view m = e.what();
  // main() folds newlines into one line, so only emptiness and library text are checked here.
  const char* broken =
      m.empty() ? "empty message"
      : m.find(k_nlohmann_tag) != std::string_view::npos && input.find(k_nlohmann_tag) == std::string_view::npos
          ? "raw nlohmann text in message"
          : nullptr;
  if (broken != nullptr) {
    std::fprintf(stderr, "vstash fuzz: %s: %.*s\n", broken, static_cast<int>(m.size()), m.data());
    std::abort();
  }
}

}  // namespace vstash::fuzz
