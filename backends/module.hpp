// SPDX-License-Identifier: MIT
// A store built as a shared module (CMakeLists.txt vstash_backend MODULE; src/util/module.hpp)
// exports `extern "C" const BackendModule* vstash_module_<type>()`: its factories, which the
// registry (backends/registry.cpp) calls through on the first use of that store type.
#pragma once

#include "backends/registry.hpp"

namespace vstash::backends {

struct BackendModule {
  const char* version;  // VSTASH_VERSION of the module's build
  Factory create = nullptr;
};

}  // namespace vstash::backends
