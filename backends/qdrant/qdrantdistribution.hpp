// SPDX-License-Identifier: MIT
// Qdrant's distributed-collection settings from a profile (docs/backends.md "Scaling out"):
// the collection parameters sent when vstash creates a collection, and the per-request read
// consistency and write ordering query parameters, as the OpenAPI spec places them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backends/backend.hpp"

namespace vstash::backends::qdrant {

struct Distribution {
  // CreateCollection body fields; unset ones are left out (the server's default).
  std::optional<int64_t> shard_number;
  std::optional<int64_t> replication_factor;
  std::optional<int64_t> write_consistency_factor;
  std::optional<bool> on_disk;  // vectors on disk: VectorParams.on_disk
  // Query parameters: ReadConsistency ("2", "majority", "quorum", "all") on reads,
  // WriteOrdering ("weak", "medium", "strong") on point writes; empty for none.
  std::string consistency;
  std::string ordering;
  // Custom sharding (qdrantshards.hpp): the shared collection's name template, "" for off.
  std::string shard_collection;
};

// The profile's keys, checked: a bad value is a one-line UsageError naming the key.
Distribution distribution_from(const Profile& profile);
// Adds the collection parameters to a CreateCollection body (whose "vectors" is set).
void add_collection_params(const Distribution& d, json& body);
// The call's path with `consistency` (reads: query, search, scroll, count, retrieve) or
// `ordering` (point writes) appended to its query string when the profile sets them.
std::string with_request_params(const Distribution& d, const std::string& method, const std::string& path);

}  // namespace vstash::backends::qdrant
