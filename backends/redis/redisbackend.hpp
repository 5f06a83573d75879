// SPDX-License-Identifier: MIT
// The redis store. Only the factory is public; RedisBackend lives in redisbackend.cpp.
#pragma once

#include <memory>

#include "backends/backend.hpp"

namespace vstash::backends::redis {

// Builds the backend from a profile of type "redis". Connects lazily or eagerly as documented
// in redisbackend.cpp; throws UsageError for a bad profile value.
std::unique_ptr<Backend> create(const Profile& profile);

}  // namespace vstash::backends::redis
