// SPDX-License-Identifier: MIT
// Shortest round-trip float text via std::to_chars (exact and allocation-free per value).
#include "src/util/floatformat.hpp"

#include <charconv>

namespace vstash::util {

namespace {

template <typename T>
void append_value(std::string& out, T value) {
  // 32 covers the longest shortest-form double ("-2.2250738585072014e-308" is 24).
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  (void)ec;
  out.append(buffer, end);
}

}  // namespace

void append_float(std::string& out, float value) { append_value(out, value); }

void append_double(std::string& out, double value) { append_value(out, value); }

void append_float_array(std::string& out, const float* values, size_t n) {
  // Reserve roughly once: most float32 values need at most 15 characters plus a comma.
  out.reserve(out.size() + n * 16 + 2);
  out.push_back('[');
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    append_value(out, values[i]);
  }
  out.push_back(']');
}

}  // namespace vstash::util
