// SPDX-License-Identifier: MIT
// The pgvector store's checkpoints, native SQL in its shared tables (pgschema.hpp): a save is
// one transaction, so readers see all of a checkpoint or none of it.
#pragma once

#include <string>
#include <vector>

#include "backends/checkpointstore.hpp"
#include "backends/pgvector/pgconnection.hpp"
#include "backends/pgvector/pgschema.hpp"

namespace vstash::backends::pgvector {

class PgCheckpoints final : public CheckpointStore {
 public:
  // tables: the store's tables, created on first use; session is the store's connection.
  PgCheckpoints(Session& session, TablesFn tables);

  std::string save_checkpoint(const Checkpoint& c) override;
  Checkpoint load_checkpoint(const std::string& path) override;
  std::vector<CheckpointInfo> list_checkpoints(const std::string& model) override;
  bool delete_checkpoint(const std::string& path) override;

 private:
  Session& m_session;
  TablesFn m_tables;
};

}  // namespace vstash::backends::pgvector
