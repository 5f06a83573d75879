// SPDX-License-Identifier: MIT
// Reading and writing arrays by file name, whatever the format:
//   data.npy                 one NPY array
//   data.h5:/train           one dataset of an HDF5 file ("FILE.h5:/group/dataset";
//                            "data.h5:train" is the same, as in h5py's f["train"])
//   data.h5                  (reading) the file's only dataset, or an error listing them
// The extension decides the format (.npy; .h5/.hdf5/.hdf). Readers stream in row blocks, so
// files larger than memory are ingested in bounded memory.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "src/array.hpp"

namespace vstash::io {

struct ArrayLocation {
  std::string file;     // path on disk
  std::string dataset;  // HDF5 dataset path ("/train"), empty for NPY or "the only one"
  bool is_hdf5 = false;
  static ArrayLocation parse(const std::string& spec);  // throws UsageError
  std::string to_string() const;                        // for messages: "data.h5:/train"
};

// Streams the rows of an array file in blocks. Validates the header against the file size
// before reading anything (a header promising more bytes than the file holds is an error
// naming the file).
class ArrayReader {
 public:
  virtual ~ArrayReader() = default;
  virtual DType dtype() const = 0;
  virtual const Shape& shape() const = 0;  // full shape; shape()[0] rows (0-d: 1 row)
  int64_t rows() const { return shape().empty() ? 1 : shape()[0]; }
  // Reads up to max_rows rows starting at row `first`, as native-endian C-order data.
  virtual Array read_rows(int64_t first, int64_t max_rows) = 0;
  // HDF5 attributes of the dataset (strings/numbers as JSON); NPY: empty.
  virtual nlohmann::json attributes() const { return nlohmann::json::object(); }
  // Every row holding a NaN or Inf, in order, read block_rows rows at a time (the whole-file
  // check before an ingest writes anything). NPY scans the file mapped, without copies.
  virtual std::vector<int64_t> nonfinite_rows(int64_t block_rows);
};

std::unique_ptr<ArrayReader> open_array(const std::string& spec);
// Reads the whole array (for small inputs: labels, ids, checkpoints, queries).
Array read_array(const std::string& spec);
// Reads a 1-D variable- or fixed-length string dataset (HDF5) or a unicode/bytes NPY ('<U', 'S')
// array: ids. Throws UsageError for other types.
std::vector<std::string> read_strings(const std::string& spec);
// True if spec names an HDF5 dataset holding strings.
bool is_string_array(const std::string& spec);

// Writes atomically: to a temp file in the same directory, then rename. For HDF5 with a
// dataset path, other datasets already in the file are kept (the file is copied first).
void write_array(const std::string& spec, const Array& array);
// Strings (ids) the same way: NPY '<U<max length>', HDF5 variable-length UTF-8 ("/ids"
// when no dataset path is given).
void write_strings(const std::string& spec, const std::vector<std::string>& strings);

// Several named arrays in one go (a batch's data + labels + ids; a checkpoint's arrays).
// NPY target "out.npy" with several arrays writes out.npy (the first, "data") plus
// out.<name>.npy siblings ("enc/w" -> out.enc.w.npy); HDF5 target "out.h5" writes /<name>
// datasets (names may contain '/': groups are created), strings as variable-length UTF-8,
// attrs on the root group. All files appear atomically.
struct NamedArray {
  std::string name;
  Array array;
};
void write_arrays(const std::string& target, const std::vector<NamedArray>& arrays,
                  const std::vector<std::string>& ids = {}, const nlohmann::json& attributes = {});
// Every numeric dataset of an HDF5 file (name = path without the leading '/'), or the single
// array of an NPY file (name "parameters"). For checkpoint save.
std::vector<NamedArray> read_all_arrays(const std::string& file);

}  // namespace vstash::io
