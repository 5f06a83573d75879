// SPDX-License-Identifier: MIT
// The pgvector store's module entry (backends/module.hpp).
#include "backends/module.hpp"
#include "backends/pgvector/pgvectorbackend.hpp"

extern "C" const vstash::backends::BackendModule* vstash_module_pgvector();

extern "C" const vstash::backends::BackendModule* vstash_module_pgvector() {
  static const vstash::backends::BackendModule module{VSTASH_VERSION, &vstash::backends::pgvector::create};
  return &module;
}
