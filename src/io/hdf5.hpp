// SPDX-License-Identifier: MIT
// HDF5 through the C API with RAII handles: datasets addressed as FILE.h5:/group/dataset,
// chunked and gzip datasets, variable-length string datasets (ids) and attributes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "arrayfile.hpp"

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
void write_hdf5(const std::string& file, const std::vector<Hdf5Write>& datasets,
                const nlohmann::json& root_attributes, bool keep_existing);

}  // namespace vstash::io
