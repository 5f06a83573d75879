// SPDX-License-Identifier: MIT
// NPY format versions 1.0, 2.0 and 3.0: every numeric dtype numpy writes (float16/32/64,
// int8-64, uint8-64, bool), little- and big-endian, fortran_order True or False; fixed-width
// unicode ('<U') and bytes ('S') arrays read as strings (ids). Object (pickled) arrays are
// refused with a clear message.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "arrayfile.hpp"

namespace vstash::io {

std::unique_ptr<ArrayReader> open_npy(const std::string& path);
std::vector<std::string> read_npy_strings(const std::string& path);
// Writes version 1.0 (2.0 if the header needs it), little-endian, C order, atomically.
void write_npy(const std::string& path, const Array& array);
// Writes NPY bytes to an already open stream (stdout streaming mode).
void write_npy_stream(std::FILE* out, const Array& array);
// Strings (UTF-8) as a 1-d '<U<max length>' array, atomically / to a stream.
void write_npy_strings(const std::string& path, const std::vector<std::string>& strings);
void write_npy_strings_stream(std::FILE* out, const std::vector<std::string>& strings);
// True if the file holds a unicode or bytes array (validates the header).
bool npy_holds_strings(const std::string& path);

}  // namespace vstash::io
