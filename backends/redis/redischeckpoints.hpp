// SPDX-License-Identifier: MIT
// Redis's native checkpoint store (backends/checkpointstore.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "backends/checkpointstore.hpp"
#include "backends/redis/redisstore.hpp"

namespace vstash::backends::redis {

// Checkpoints: one hash per MODEL@EPOCH (manifest + every array, so readers see all of it
// or none, even under expiry), a sorted set of epochs and a "latest" string moved forward
// only by a Lua compare-and-set, all written in one MULTI/EXEC; without overwrite the epoch's
// key is WATCHed from the existence check to the EXEC.
std::string save_checkpoint(Connection& conn, const StoreConfig& cfg, const Checkpoint& checkpoint);
Checkpoint load_checkpoint(Connection& conn, const StoreConfig& cfg, const CheckpointRef& ref);
std::vector<CheckpointInfo> list_checkpoints(Connection& conn, const StoreConfig& cfg, const std::string& model);
bool delete_checkpoint(Connection& conn, const StoreConfig& cfg, const CheckpointRef& ref);
std::map<std::string, int64_t> checkpoint_counts(Connection& conn, const StoreConfig& cfg);

class RedisCheckpoints final : public CheckpointStore {
 public:
  // conn is the backend's one connection: every call holds its mutex.
  RedisCheckpoints(Connection& conn, const StoreConfig& cfg, std::mutex& mutex);
  std::string save_checkpoint(const Checkpoint& checkpoint) override;
  Checkpoint load_checkpoint(const std::string& path) override;
  std::vector<CheckpointInfo> list_checkpoints(const std::string& model) override;
  bool delete_checkpoint(const std::string& path) override;

 private:
  Connection& m_conn;
  const StoreConfig& m_cfg;
  std::mutex& m_mutex;
};

}  // namespace vstash::backends::redis
