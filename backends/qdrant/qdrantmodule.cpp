// SPDX-License-Identifier: MIT
// The qdrant store's module entry (backends/module.hpp).
#include "backends/module.hpp"
#include "backends/qdrant/qdrantbackend.hpp"

extern "C" const vstash::backends::BackendModule* vstash_module_qdrant();

extern "C" const vstash::backends::BackendModule* vstash_module_qdrant() {
  static const vstash::backends::BackendModule module{VSTASH_VERSION, &vstash::backends::qdrant::create};
  return &module;
}
