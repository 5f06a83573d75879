// SPDX-License-Identifier: MIT
// The local store's dataset records under the catalog (localcatalog.hpp), and the one
// lookup of a dataset that must exist.
#include "backends/local/localcatalog.hpp"

#include "backends/local/localindex.hpp"

namespace vstash::backends::local {

namespace {

catalog::DatasetRecord catalog_record(const DatasetRecord& r) {
  catalog::DatasetRecord out;
  out.spec = r.spec;
  out.next_index = r.next_index;
  out.version = std::to_string(r.version);
  out.extra = {{"id", r.id}};
  return out;
}

}  // namespace

DatasetRecord require_dataset(Connection& conn, const std::string& name) {
  auto r = find_dataset(conn, name);
  if (!r) {
    throw catalog::dataset_not_found(conn.path(), name);
  }
  return std::move(*r);
}

std::optional<catalog::DatasetRecord> LocalDatasetRecords::get(const std::string& name) {
  const auto r = find_dataset(m_conn, name);
  return r ? std::optional(catalog_record(*r)) : std::nullopt;
}

std::vector<catalog::DatasetRecord> LocalDatasetRecords::list() {
  std::vector<catalog::DatasetRecord> out;
  for (const auto& r : all_datasets(m_conn)) {
    out.push_back(catalog_record(r));
  }
  return out;
}

bool LocalDatasetRecords::insert(const catalog::DatasetRecord& record) {
  if (find_dataset(m_conn, record.spec.name)) {
    return false;
  }
  insert_dataset(m_conn, record.spec);
  if (record.next_index != 0) {
    m_conn.prepare("UPDATE datasets SET next_index = ?1 WHERE name = ?2")
        .bind(1, record.next_index)
        .bind(2, record.spec.name)
        .run();
  }
  return true;
}

bool LocalDatasetRecords::compare_and_set(const catalog::DatasetRecord& seen, const catalog::DatasetRecord& next) {
  const auto now = find_dataset(m_conn, seen.spec.name);
  if (!now || std::to_string(now->version) != seen.version) {
    return false;
  }
  m_conn.prepare("UPDATE datasets SET metadata = ?1, next_index = ?2 WHERE id = ?3")
      .bind(1, dump_json(next.spec.metadata, "dataset \"" + next.spec.name + "\""))
      .bind(2, next.next_index)
      .bind(3, now->id)
      .run();
  return true;
}

bool LocalDatasetRecords::remove(const std::string& name) {
  const auto r = find_dataset(m_conn, name);
  if (!r) {
    return false;
  }
  m_conn.prepare("DELETE FROM rows WHERE dataset_id = ?1").bind(1, r->id).run();
  m_conn.prepare("DELETE FROM row_deletions WHERE dataset_id = ?1").bind(1, r->id).run();
  m_conn.prepare("DELETE FROM datasets WHERE id = ?1").bind(1, r->id).run();
  m_obsolete.push_back(r->segment(m_conn.path()));
  delete_index_record(m_conn, r->id);
  return true;
}

}  // namespace vstash::backends::local
