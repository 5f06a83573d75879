// SPDX-License-Identifier: MIT
// The cache tier: a Backend that reads batches, rows, dataset facts, checkpoint loads and
// query results through a Redis cache in front of any primary, and invalidates what writes
// change. Built by the registry when a profile names `cache: <redis profile>`; compiled only
// with the Redis backend, whose cache primitives (rediscache.hpp) it stands on.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "backends/backend.hpp"

namespace vstash::backends {

using OpenBackend = std::function<std::unique_ptr<Backend>()>;

// Wraps the primary that open_primary opens, on first need: a read served from the cache
// never connects to the primary. primary_profile gives the scope (cache_scope), the kind
// (its type) and `cache_memory_mb` (0..1048576, default 0: rows kept in process memory too,
// shared by the process's cached backends on one cache). cache_profile must be of type redis.
// Never fails because of the cache: if the cache is down or slow, reads go to the primary and
// one warning is printed.
std::unique_ptr<Backend> make_cached(OpenBackend open_primary, const Profile& primary_profile,
                                     const Profile& cache_profile);
// The same around an open primary. scope names the primary inside the cache, so that two
// primaries sharing one cache never see each other's entries; the two-argument form uses the
// primary's kind() only.
std::unique_ptr<Backend> make_cached(std::unique_ptr<Backend> primary, const Profile& cache_profile);
std::unique_ptr<Backend> make_cached(std::unique_ptr<Backend> primary, const Profile& cache_profile,
                                     const std::string& scope);
// A scope for make_cached that identifies the primary profile's store (type and every
// non-secret value, hashed), e.g. "local:3f2a...".
std::string cache_scope(const Profile& primary_profile);

}  // namespace vstash::backends
