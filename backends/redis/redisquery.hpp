// SPDX-License-Identifier: MIT
// Internal to the redis backend: nearest-neighbour queries by exact scan.
#pragma once

#include <optional>
#include <vector>

#include "backends/redis/redisrows.hpp"

namespace vstash::backends::redis {

// Exact top-k of n queries in one pass over the chunks (backends/common/blockscan); the
// filter is evaluated once per row. nullopt when a concurrent write moved gen.
std::optional<std::vector<std::vector<QueryHit>>> scan_query(DatasetRows& store, const Snapshot& snap,
                                                             const std::vector<float>& queries, size_t n,
                                                             const QueryOptions& options);

}  // namespace vstash::backends::redis
