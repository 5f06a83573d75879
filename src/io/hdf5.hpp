// SPDX-License-Identifier: MIT
// HDF5 through the C API with RAII handles: datasets addressed as FILE.h5:/group/dataset,
// chunked and gzip datasets, variable-length string datasets (ids) and attributes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "src/io/arrayfile.hpp"

namespace vstash::io {

std::unique_ptr<ArrayReader> open_hdf5(const std::string& file, const std::string& dataset);
std::vector<std::string> read_hdf5_strings(const std::string& file, const std::string& dataset);
std::vector<std::string> list_hdf5_datasets(const std::string& file);  // "/train", "/g/x", ...
nlohmann::json read_hdf5_file_attributes(const std::string& file);     // root-group attributes
nlohmann::json read_hdf5_dataset_attributes(const std::string& file, const std::string& dataset);
// True if the dataset ("" = the only one) holds variable- or fixed-length strings.
bool hdf5_holds_strings(const std::string& file, const std::string& dataset);

// One dataset to write: numbers, or strings (stored as variable-length UTF-8).
struct Hdf5Write {
  std::string dataset;  // "/train", "/g/ids"; parent groups are created
  const Array* array = nullptr;
  const std::vector<std::string>* strings = nullptr;
};
// Writes the datasets (replacing any at the same path) and root attributes (JSON object:
// strings, numbers, bools, arrays of numbers or of strings; anything else is stored as its
// JSON text) atomically. keep_existing: start from a copy of the existing file so its other
// datasets and attributes stay; otherwise the file is created afresh. Arrays over 1 MiB are
// chunked by rows (about 1 MiB per chunk) and gzip-compressed at level 4; smaller ones are
// stored contiguous.
void write_hdf5(const std::string& file, const std::vector<Hdf5Write>& datasets, const nlohmann::json& root_attributes,
                bool keep_existing);

// Datasets of `rows` rows each, written block by block in bounded memory, atomically, laid out
// as write_hdf5 lays out the same arrays (same chunking and compression): append() writes a
// block by hyperslab after the rows already written; finish() requires every dataset to hold
// exactly `rows` rows (else RetryableError: the source changed meanwhile) and closes the
// file; commit() renames it into place. Destroyed before commit(), nothing is left behind.
struct Hdf5BlockDataset {
  std::string dataset;  // "/data", "/g/ids"
  DType dtype = DType::f32;
  Shape row_shape;
  bool strings = false;  // variable-length UTF-8 (ids); dtype and row_shape unused
};
class Hdf5BlockWriter {
 public:
  Hdf5BlockWriter(const std::string& file, const std::vector<Hdf5BlockDataset>& datasets, int64_t rows,
                  bool keep_existing);
  ~Hdf5BlockWriter();
  Hdf5BlockWriter(const Hdf5BlockWriter&) = delete;
  Hdf5BlockWriter& operator=(const Hdf5BlockWriter&) = delete;
  void append(size_t dataset, const Array& rows);
  void append_strings(size_t dataset, const std::vector<std::string>& strings);
  void finish();
  void commit();

 private:
  struct State;
  std::unique_ptr<State> m;
};

}  // namespace vstash::io
