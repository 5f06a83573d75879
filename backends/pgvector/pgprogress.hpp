// SPDX-License-Identifier: MIT
// The pgvector store's training progress: one row per (run, rank) in P_progress
// (pgschema.hpp), replaced by an upsert.
#pragma once

#include <string>
#include <vector>

#include "backends/pgvector/pgconnection.hpp"
#include "backends/pgvector/pgschema.hpp"
#include "backends/progressstore.hpp"

namespace vstash::backends::pgvector {

class PgProgress final : public ProgressStore {
 public:
  // tables: the store's tables, created on first use; session is the store's connection.
  PgProgress(Session& session, TablesFn tables);

  void record_progress(const ProgressRecord& r) override;
  std::vector<ProgressRecord> list_progress(const std::string& run) override;

 private:
  Session& m_session;
  TablesFn m_tables;
};

}  // namespace vstash::backends::pgvector
