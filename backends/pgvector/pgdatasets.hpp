// SPDX-License-Identifier: MIT
// The pgvector store's dataset records (one row of P_datasets per dataset, pgschema.hpp) as
// the catalog's primitive operations (backends/common/catalog.hpp). Every operation runs in
// the caller's transaction on the session; the rules on top (compatibility, messages,
// metadata merge, `require`) are the catalog's. A record's version is the row's xmin, so
// compare_and_set fails when any writer changed the row since it was read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/common/catalog.hpp"
#include "backends/pgvector/pgconnection.hpp"
#include "backends/pgvector/pgschema.hpp"

namespace vstash::backends::pgvector {

// The store's view of a dataset record: its rows table and live row count (kept in the
// record's extra as "table" and "rows").
struct CatalogEntry {
  DatasetSpec spec;
  std::string table;  // unquoted rows table name
  int64_t rows = 0;
  int64_t next_index = 0;
};
CatalogEntry entry_of(const catalog::DatasetRecord& record);

class PgDatasetRecords final : public catalog::DatasetRecords {
 public:
  // lock: get() locks the row it reads (SELECT ... FOR UPDATE) until the transaction ends,
  // which serialises the writers of that dataset.
  PgDatasetRecords(Session& session, const Tables& tables, bool lock = false)
      : m_session(session), m_tables(tables), m_lock(lock) {}

  std::string location() const override { return m_session.location(); }
  std::optional<catalog::DatasetRecord> get(const std::string& name) override;
  std::vector<catalog::DatasetRecord> list() override;
  // Inserts the catalog row and creates the rows table.
  bool insert(const catalog::DatasetRecord& record) override;
  // Writes the record's metadata and next_index.
  bool compare_and_set(const catalog::DatasetRecord& seen, const catalog::DatasetRecord& next) override;
  // Drops the rows table and deletes the catalog row.
  bool remove(const std::string& name) override;

 private:
  Session& m_session;
  const Tables& m_tables;
  bool m_lock;
};

}  // namespace vstash::backends::pgvector
