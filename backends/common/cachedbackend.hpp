// SPDX-License-Identifier: MIT
// The cache tier: a Backend that reads batches, checkpoint loads and query results through a
// Redis cache in front of any primary, and invalidates what writes change. Built by the
// registry when a profile names `cache: <redis profile>`.
#pragma once

#include <memory>

#include "../backend.hpp"

namespace vstash::backends {

// Wraps primary. cache_profile must be of type redis. Never fails because of the cache:
// if the cache is down or slow, reads go to the primary and one warning is printed.
std::unique_ptr<Backend> make_cached(std::unique_ptr<Backend> primary, const Profile& cache_profile);

}  // namespace vstash::backends
