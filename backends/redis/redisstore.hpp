// SPDX-License-Identifier: MIT
// Internal to the redis backend: key naming, TTL handling and the checkpoint/progress half
// of the store (redischeckpoints.cpp), shared by redisbackend.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.hpp"
#include "backends/redis/redisconnection.hpp"

namespace vstash::backends::redis {

struct StoreConfig {
  std::string prefix = "vstash:";
  int64_t ttl = 0;  // seconds; 0 = keys never expire
};

// A name made safe inside a key: '%', '{', '}', ':' and control bytes become %XX, so that
// no dataset or model name can produce another's keys. The {...} around it in the key
// names is a cluster hash tag too, keeping one dataset's keys in one slot.
std::string key_escape(std::string_view name);

// Queues EXPIRE key ttl when the profile has a ttl.
void append_expire(Connection& conn, const StoreConfig& cfg, const std::string& key);

// Checkpoints: one hash per MODEL@EPOCH (manifest + every array, so readers see all of it
// or none, even under expiry), a sorted set of epochs and a "latest" string moved forward
// only by a Lua compare-and-set, all written in one MULTI/EXEC; without overwrite the epoch's
// key is WATCHed from the existence check to the EXEC.
std::string save_checkpoint(Connection& conn, const StoreConfig& cfg, const Checkpoint& checkpoint);
Checkpoint load_checkpoint(Connection& conn, const StoreConfig& cfg, const CheckpointRef& ref);
std::vector<CheckpointInfo> list_checkpoints(Connection& conn, const StoreConfig& cfg, const std::string& model);
bool delete_checkpoint(Connection& conn, const StoreConfig& cfg, const CheckpointRef& ref);
std::map<std::string, int64_t> checkpoint_counts(Connection& conn, const StoreConfig& cfg);

void record_progress(Connection& conn, const StoreConfig& cfg, const ProgressRecord& record);
std::vector<ProgressRecord> list_progress(Connection& conn, const StoreConfig& cfg, const std::string& run);

}  // namespace vstash::backends::redis
