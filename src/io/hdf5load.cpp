// SPDX-License-Identifier: MIT
// src/io/hdf5.hpp's functions, forwarded to the HDF5 module (src/io/hdf5module.hpp), which is
// loaded on the first call (src/util/module.hpp).
#include "src/io/hdf5.hpp"

#include "src/io/hdf5module.hpp"
#include "src/util/module.hpp"

// Defined when the program links the module in (the tests, the Python module); null otherwise.
extern "C" const vstash::io::hdf5::Module* vstash_module_hdf5() __attribute__((weak));

namespace vstash::io {

namespace {

const hdf5::Module& module() {
  static const hdf5::Module& m = []() -> const hdf5::Module& {
    const hdf5::Module* loaded = util::module_entry(&vstash_module_hdf5, "hdf5", "vstash_module_hdf5")();
    util::check_module_version("hdf5", loaded->version);
    return *loaded;
  }();
  return m;
}

}  // namespace

std::unique_ptr<ArrayReader> open_hdf5(const std::string& file, const std::string& dataset) {
  return module().open(file, dataset);
}

std::vector<std::string> read_hdf5_strings(const std::string& file, const std::string& dataset) {
  return module().read_strings(file, dataset);
}

std::vector<std::string> list_hdf5_datasets(const std::string& file) { return module().list_datasets(file); }

nlohmann::json read_hdf5_file_attributes(const std::string& file) { return module().file_attributes(file); }

nlohmann::json read_hdf5_dataset_attributes(const std::string& file, const std::string& dataset) {
  return module().dataset_attributes(file, dataset);
}

bool hdf5_holds_strings(const std::string& file, const std::string& dataset) {
  return module().holds_strings(file, dataset);
}

void write_hdf5(const std::string& file, const std::vector<Hdf5Write>& datasets, const nlohmann::json& root_attributes,
                bool keep_existing) {
  module().write(file, datasets, root_attributes, keep_existing);
}

struct Hdf5BlockWriter::State {
  std::unique_ptr<hdf5::BlockSink> sink;
};

Hdf5BlockWriter::Hdf5BlockWriter(const std::string& file, const std::vector<Hdf5BlockDataset>& datasets, int64_t rows,
                                 bool keep_existing)
    : m(std::make_unique<State>(State{module().block_writer(file, datasets, rows, keep_existing)})) {}

Hdf5BlockWriter::~Hdf5BlockWriter() = default;

void Hdf5BlockWriter::append(size_t dataset, const Array& rows) { m->sink->append(dataset, rows); }

void Hdf5BlockWriter::append_strings(size_t dataset, const std::vector<std::string>& strings) {
  m->sink->append_strings(dataset, strings);
}

void Hdf5BlockWriter::finish() { m->sink->finish(); }

void Hdf5BlockWriter::commit() { m->sink->commit(); }

}  // namespace vstash::io
