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

}  // namespace vstash::io
