// SPDX-License-Identifier: MIT
// The local store. Only the factory is public; LocalBackend lives in localbackend.cpp.
#pragma once

#include <memory>

#include "backends/backend.hpp"

namespace vstash::backends::local {

// Builds the backend from a profile of type "local". Connects lazily or eagerly as documented
// in localbackend.cpp; throws UsageError for a bad profile value.
std::unique_ptr<Backend> create(const Profile& profile);
// The same store opened only to read (Access::read_only): nothing is created or written, a
// store in a read-only file and directory can be read, and a path with no store is
// NotFoundError ("PATH: no local store here (check the profile's path)").
std::unique_ptr<Backend> open_read_only(const Profile& profile);

}  // namespace vstash::backends::local
