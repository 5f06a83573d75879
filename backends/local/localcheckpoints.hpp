// SPDX-License-Identifier: MIT
// The local store's checkpoint store: native SQLite (tables checkpoints and
// checkpoint_arrays), each call one transaction on the backend's connections.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backends/checkpointstore.hpp"
#include "backends/local/localconnections.hpp"

namespace vstash::backends::local {

class LocalCheckpoints final : public CheckpointStore {
 public:
  explicit LocalCheckpoints(Connections& db);

  std::string save_checkpoint(const Checkpoint& checkpoint) override;
  Checkpoint load_checkpoint(const std::string& path) override;
  std::vector<CheckpointInfo> list_checkpoints(const std::string& model) override;
  bool delete_checkpoint(const std::string& path) override;

 private:
  Connections& m_db;
};

// Checkpoints per model, for stats (inside the caller's transaction).
std::map<std::string, int64_t> checkpoint_counts(Connection& conn);

}  // namespace vstash::backends::local
