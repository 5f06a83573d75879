// SPDX-License-Identifier: MIT
// Builds a Backend from a profile through one explicit table of the compiled-in stores.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace vstash {
struct ProfileFile;
}

namespace vstash::backends {

// Throws UsageError for an unknown or not-compiled-in type. If the profile names
// `cache: <redis profile>`, that profile is looked up in `file` and the primary is wrapped in
// the cache tier (common/cachedbackend.hpp); without a file the cache key is an error.
// access: see Access in backend.hpp.
std::unique_ptr<Backend> create_backend(const Profile& profile, const ProfileFile* file = nullptr,
                                        Access access = Access::read_write);
// Types compiled into this binary ("local", "pgvector", ...), for `vstash --version`.
std::vector<std::string> compiled_backends();

}  // namespace vstash::backends
