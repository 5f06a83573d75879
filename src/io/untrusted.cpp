// SPDX-License-Identifier: MIT
#include "src/io/untrusted.hpp"

#include <fmt/format.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "src/errors.hpp"

namespace vstash::io {

namespace {

std::string mib(size_t bytes) { return fmt::format("{} MiB", bytes >> 20); }

}  // namespace

std::string json_error_text(const nlohmann::json::exception& e) {
  std::string msg = e.what();
  if (const auto close = msg.find("] "); msg.rfind("[json.exception", 0) == 0 && close != std::string::npos) {
    msg.erase(0, close + 2);
  }
  if (const auto nl = msg.find('\n'); nl != std::string::npos) {
    msg.erase(nl);
  }
  return msg;
}

std::string read_small_file(const std::string& path, size_t limit, const std::string& what) {
  std::unique_ptr<std::FILE, decltype(&std::fclose)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    throw UsageError(fmt::format("{}: cannot read \"{}\": {}", what, path, std::strerror(errno)));
  }
  std::string text;
  char buf[65536];
  size_t n = 0;
  // Read at most limit + 1 bytes: one more than allowed proves the input too large without
  // reading the rest of it (a device such as /dev/zero never ends).
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    if (text.size() + n > limit) {
      throw UsageError(fmt::format("{} \"{}\": larger than {} (the limit for {})", what, path, mib(limit), what));
    }
    text.append(buf, n);
  }
  if (std::ferror(f.get())) {
    throw UsageError(fmt::format("{}: cannot read \"{}\": {}", what, path, std::strerror(errno)));
  }
  return text;
}

void check_json_depth(std::string_view text, const std::string& where) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > k_max_json_depth) {
        throw UsageError(fmt::format("{}: JSON nested deeper than {} levels (the limit)", where, k_max_json_depth));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

nlohmann::json parse_untrusted_json(std::string_view text, const std::string& where) {
  check_json_depth(text, where);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw UsageError(fmt::format("{}: invalid JSON: {}", where, json_error_text(e)));
  } catch (const nlohmann::json::exception& e) {
    // out_of_range.406: "number overflow parsing '1e400'".
    throw UsageError(fmt::format("{}: invalid JSON: {}", where, json_error_text(e)));
  }
}

}  // namespace vstash::io
