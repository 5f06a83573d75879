// SPDX-License-Identifier: MIT
// Builds a Backend from a profile through one explicit table of the compiled-in stores.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend.hpp"

namespace vstash::backends {

// Throws UsageError for an unknown or not-compiled-in type.
std::unique_ptr<Backend> create_backend(const Profile& profile);
// Types compiled into this binary ("local", "pgvector", ...), for `vstash --version`.
std::vector<std::string> compiled_backends();

}  // namespace vstash::backends
