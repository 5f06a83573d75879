// SPDX-License-Identifier: MIT
// The HDF5 module's entry (src/io/hdf5module.hpp), compiled into vstash-hdf5.so.
#include "src/io/hdf5module.hpp"

extern "C" const vstash::io::hdf5::Module* vstash_module_hdf5();

extern "C" const vstash::io::hdf5::Module* vstash_module_hdf5() {
  using namespace vstash::io::hdf5;
  static const Module module{VSTASH_VERSION,      &open_reader,   &read_strings,   &dataset_paths,    &file_attributes,
                             &dataset_attributes, &holds_strings, &write_datasets, &open_block_writer};
  return &module;
}
