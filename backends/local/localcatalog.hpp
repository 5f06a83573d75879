// SPDX-License-Identifier: MIT
// The local store's dataset records as the catalog sees them (backends/common/catalog.hpp):
// get / list / insert / compare-and-set / remove over the datasets table, run inside the
// caller's write transaction. The transaction holds SQLite's write lock, so nothing changes
// a record between get and compare_and_set: it fails only when the dataset is gone.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backends/common/catalog.hpp"
#include "backends/local/localstore.hpp"

namespace vstash::backends::local {

class LocalDatasetRecords final : public catalog::DatasetRecords {
 public:
  // conn is in a write transaction; remove() adds the dropped dataset's segment file to
  // obsolete, to be unlinked after the commit.
  LocalDatasetRecords(Connection& conn, std::vector<std::string>& obsolete) : m_conn(conn), m_obsolete(obsolete) {}

  std::string location() const override { return m_conn.path(); }
  std::optional<catalog::DatasetRecord> get(const std::string& name) override;
  std::vector<catalog::DatasetRecord> list() override;
  bool insert(const catalog::DatasetRecord& record) override;
  // Stores next's metadata and next_index (the version is bumped by row changes only).
  bool compare_and_set(const catalog::DatasetRecord& seen, const catalog::DatasetRecord& next) override;
  // Drops the dataset's rows, its record, its index record and (after the commit) its segment.
  bool remove(const std::string& name) override;

 private:
  Connection& m_conn;
  std::vector<std::string>& m_obsolete;
};

}  // namespace vstash::backends::local
