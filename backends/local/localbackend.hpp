// SPDX-License-Identifier: MIT
// The local store. Only the factory is public; LocalBackend lives in localbackend.cpp.
#pragma once

#include <memory>

#include "../backend.hpp"

namespace vstash::backends::local {

// Builds the backend from a profile of type "local". Connects lazily or eagerly as documented
// in localbackend.cpp; throws UsageError for a bad profile value.
std::unique_ptr<Backend> create(const Profile& profile);

}  // namespace vstash::backends::local
