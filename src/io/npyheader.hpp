// SPDX-License-Identifier: MIT
// The NPY header: preamble (magic, version, length), the Python-literal dict and its checks.
// Nothing here trusts the file: lengths are checked against the file size before any read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "src/array.hpp"

namespace vstash::io {

enum class NpyKind : uint8_t { numeric, unicode, bytes };

struct NpyDescr {
  std::string text;  // as in the file: "<f4", ">U10", "|S5"
  NpyKind kind = NpyKind::numeric;
  DType dtype = DType::f32;  // numeric only
  size_t itemsize = 0;
  bool swap = false;  // stored in the other byte order than the host's
};

struct NpyPreamble {
  int major = 1;
  uint64_t header_offset = 0;  // where the dict text starts
  uint64_t header_len = 0;
};

struct NpyHeader {
  NpyDescr descr;
  bool fortran = false;
  Shape shape;
  uint64_t data_offset = 0;
  uint64_t data_bytes = 0;
};

// Checks magic and version and that the header fits in the file. `pre` holds the first
// `have` bytes (up to 12) of a file of file_size bytes. Throws UsageError naming path.
NpyPreamble parse_npy_preamble(const std::string& path, const unsigned char* pre, size_t have, uint64_t file_size);
// Parses the dict ("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }") and computes
// data_bytes with overflow checks. Refuses object, structured, complex and datetime dtypes.
NpyHeader parse_npy_header(const std::string& path, std::string_view text);
// The file must hold exactly data_offset + data_bytes bytes.
void check_npy_size(const std::string& path, const NpyHeader& header, uint64_t file_size);

// "<f4", "|u1", "|b1", ...
std::string npy_descr_for(DType dtype);
// Magic, version (1.0, or 2.0 if the dict is too long) and the dict, padded to 64 bytes.
std::string make_npy_header(const std::string& descr, const Shape& shape);

}  // namespace vstash::io
