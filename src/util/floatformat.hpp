// SPDX-License-Identifier: MIT
// Fast, exact float formatting for JSON bodies: the shortest text that parses back to the
// same float (std::to_chars). Never writes NaN or Inf (callers validate first).
#pragma once

#include <cstddef>
#include <string>

namespace vstash::util {

void append_float(std::string& out, float value);
void append_double(std::string& out, double value);
// "[v0,v1,...]"
void append_float_array(std::string& out, const float* values, size_t n);

}  // namespace vstash::util
