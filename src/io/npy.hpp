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

#include "src/io/arrayfile.hpp"
#include "src/io/atomicfile.hpp"

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

// One NPY array written block by block in bounded memory, atomically: the header promises
// `rows` rows of (dtype, row_shape), append() adds rows, finish() checks the count (when a
// different number was appended, the header is rewritten in place if its length allows, else
// RetryableError: the source changed meanwhile), commit() renames it into place. Destroyed
// before commit(), nothing is left behind. The bytes are write_npy's for the same array.
class NpyBlockWriter {
 public:
  NpyBlockWriter(std::string path, DType dtype, Shape row_shape, int64_t rows);
  void append(const Array& rows);
  int64_t rows_written() const { return m_written; }
  void finish();
  void commit() { m_file.commit(); }

 private:
  std::string m_path;
  DType m_dtype;
  Shape m_row_shape;
  int64_t m_rows;
  int64_t m_written = 0;
  size_t m_header_bytes = 0;
  AtomicFile m_file;
};

// Strings (ids) written as write_npy_strings does, in bounded memory: the width of '<U<n>' is
// known only at the end, so append() spools them to an unnamed temporary file and finish()
// writes the array from it.
class NpyStringsBlockWriter {
 public:
  explicit NpyStringsBlockWriter(std::string path);
  ~NpyStringsBlockWriter();
  NpyStringsBlockWriter(const NpyStringsBlockWriter&) = delete;
  NpyStringsBlockWriter& operator=(const NpyStringsBlockWriter&) = delete;
  void append(const std::vector<std::string>& strings);
  void finish();
  void commit() { m_file.commit(); }

 private:
  std::string m_path;
  std::FILE* m_spool = nullptr;
  int64_t m_count = 0;
  size_t m_width = 1;
  AtomicFile m_file;
};

}  // namespace vstash::io
