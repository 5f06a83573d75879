// SPDX-License-Identifier: MIT
// The catalog's dataset records (backends/common/catalog.hpp) as Pinecone keeps them: one
// record per dataset in the reserved namespace __vstash_catalog__ of the home index, its
// metadata the spec and counters (pineconerecords.cpp: catalog_record, parse_catalog).
//
// Pinecone has no conditional write: compare_and_set re-reads the record (once this process's
// own writes are visible, profile `wait`) and writes only when it is still the one seen (its
// metadata, compared whole), which narrows a race between two processes but cannot close it.
// So a named writer (the ranks of a sharded load, RowStore::set_writer) writes a part of its
// own instead (backends/common/writerparts.hpp): a record of the reserved namespace
// __vstash_catalog__writers__ with id
// "<sha1 hex of the dataset name>/<writer>" (listed by that prefix), metadata {"dataset",
// "part": the part's JSON text}, which only that writer writes. Pinecone applies writes
// asynchronously, so this process's own writes are remembered (read-your-writes): a record
// not yet visible is served from memory, and the counters read back are never lower than the
// ones written.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/common/catalog.hpp"
#include "backends/common/writerparts.hpp"
#include "backends/pinecone/pineconeindexes.hpp"

namespace vstash::backends::pinecone {

class DatasetTable final : public catalog::SplitRecords {
 public:
  explicit DatasetTable(Indexes& indexes) : m_indexes(indexes) {}

  std::string location() const override { return m_indexes.home().location(); }

  // Raises next_index to at least `end` and row_bytes (the largest row record written, by
  // which reads are sized; the catalog knows no row_bytes) to at least `row_bytes` in one
  // write, starting from `seen`, the record the caller has just read, and re-reading when
  // another writer changed it meanwhile, as Catalog::advance does for next_index alone.
  void raise_counters(catalog::DatasetRecord seen, int64_t end, int64_t row_bytes);

  // Pinecone's view of a record (row_bytes and label_field live in its extra) and back.
  static CatalogEntry entry(const catalog::DatasetRecord& record);
  static catalog::DatasetRecord record(const CatalogEntry& entry, std::string version = {});

 protected:
  std::optional<catalog::DatasetRecord> shared_get(const std::string& name) override;
  std::vector<catalog::DatasetRecord> shared_list() override;
  // False when the record is already stored (another process made it).
  bool shared_insert(const catalog::DatasetRecord& record) override;
  // Re-reads the record, after settling this process's writes, and writes only when it is
  // still `seen` (see above).
  bool shared_compare_and_set(const catalog::DatasetRecord& seen, const catalog::DatasetRecord& next) override;
  // Deletes the dataset's namespace, then its catalog record.
  bool shared_remove(const std::string& name) override;
  // The writers namespace's records under the dataset's prefix (none before the home index).
  std::vector<catalog::WriterPart> load_parts(const std::string& name) override;
  void save_part(const std::string& name, const catalog::WriterPart& part) override;
  void drop_parts(const std::string& name) override;

 private:
  std::string parts_ns() const;
  std::vector<json> stored_parts(const std::string& name);
  // The stored record's metadata, or nullopt (also while the home index does not exist).
  std::optional<json> fetch_stored(const std::string& name);
  // The stored entry with this process's counters (never lower than what it wrote).
  CatalogEntry merge_local(CatalogEntry e);
  void save(const CatalogEntry& entry);

  Indexes& m_indexes;
  std::mutex m_mutex;
  std::map<std::string, CatalogEntry> m_written;  // this process's writes: read-your-writes
};

}  // namespace vstash::backends::pinecone
