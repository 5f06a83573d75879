// SPDX-License-Identifier: MIT
// The HDF5 module (vstash-hdf5.so, src/util/module.hpp): the functions of src/io/hdf5.hpp
// are served by src/io/hdf5load.cpp, which forwards each call to this table, returned by the
// module's entry `vstash_module_hdf5()` (src/io/hdf5entry.cpp), so that only a command that
// reads or writes an .h5 file loads libhdf5.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/io/hdf5.hpp"

namespace vstash::io::hdf5 {

// Hdf5BlockWriter's work: the same contract, method by method.
class BlockSink {
 public:
  virtual ~BlockSink() = default;
  virtual void append(size_t dataset, const Array& rows) = 0;
  virtual void append_strings(size_t dataset, const std::vector<std::string>& strings) = 0;
  virtual void finish() = 0;
  virtual void commit() = 0;
};

// The module's table: each entry has the contract of the src/io/hdf5.hpp function it serves.
struct Module {
  const char* version;  // VSTASH_VERSION of the module's build
  std::unique_ptr<ArrayReader> (*open)(const std::string& file, const std::string& dataset);
  std::vector<std::string> (*read_strings)(const std::string& file, const std::string& dataset);
  std::vector<std::string> (*list_datasets)(const std::string& file);
  nlohmann::json (*file_attributes)(const std::string& file);
  nlohmann::json (*dataset_attributes)(const std::string& file, const std::string& dataset);
  bool (*holds_strings)(const std::string& file, const std::string& dataset);
  void (*write)(const std::string& file, const std::vector<Hdf5Write>& datasets, const nlohmann::json& root_attributes,
                bool keep_existing);
  std::unique_ptr<BlockSink> (*block_writer)(const std::string& file, const std::vector<Hdf5BlockDataset>& datasets,
                                             int64_t rows, bool keep_existing);
};

// The implementations (src/io/hdf5.cpp, src/io/hdf5write.cpp), compiled into the module only.
std::unique_ptr<ArrayReader> open_reader(const std::string& file, const std::string& dataset);
std::vector<std::string> read_strings(const std::string& file, const std::string& dataset);
std::vector<std::string> dataset_paths(const std::string& file);
nlohmann::json file_attributes(const std::string& file);
nlohmann::json dataset_attributes(const std::string& file, const std::string& dataset);
bool holds_strings(const std::string& file, const std::string& dataset);
void write_datasets(const std::string& file, const std::vector<Hdf5Write>& datasets,
                    const nlohmann::json& root_attributes, bool keep_existing);
std::unique_ptr<BlockSink> open_block_writer(const std::string& file, const std::vector<Hdf5BlockDataset>& datasets,
                                             int64_t rows, bool keep_existing);

}  // namespace vstash::io::hdf5
