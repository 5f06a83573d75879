// SPDX-License-Identifier: MIT
// The pinecone store's module entry (backends/module.hpp).
#include "backends/module.hpp"
#include "backends/pinecone/pineconebackend.hpp"

extern "C" const vstash::backends::BackendModule* vstash_module_pinecone();

extern "C" const vstash::backends::BackendModule* vstash_module_pinecone() {
  static const vstash::backends::BackendModule module{VSTASH_VERSION, &vstash::backends::pinecone::create};
  return &module;
}
