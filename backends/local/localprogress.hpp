// SPDX-License-Identifier: MIT
// The local store's progress store: native SQLite (table progress, one row per run and
// rank), each call one transaction on the backend's connections.
#pragma once

#include <string>
#include <vector>

#include "backends/local/localconnections.hpp"
#include "backends/progressstore.hpp"

namespace vstash::backends::local {

class LocalProgress final : public ProgressStore {
 public:
  explicit LocalProgress(Connections& db) : m_db(db) {}

  void record_progress(const ProgressRecord& record) override;
  std::vector<ProgressRecord> list_progress(const std::string& run) override;

 private:
  Connections& m_db;
};

}  // namespace vstash::backends::local
