// SPDX-License-Identifier: MIT
// Datasets: create, describe, list and drop, through the catalog (backends/common/catalog.hpp).
#include "backends/pgvector/pgvectorstore.hpp"

#include <fmt/format.h>

#include "backends/common/catalog.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pgvector {

void PgvectorBackend::create_dataset(const DatasetSpec& spec) {
  if (spec.name.empty()) {
    throw UsageError("pgvector: dataset name must not be empty");
  }
  if (spec.dimension() < 1 || spec.dimension() > k_max_dimension) {
    throw UsageError(fmt::format("dataset \"{}\": pgvector holds 1 to {} dimensions, got {}", spec.name,
                                 k_max_dimension, spec.dimension()));
  }
  note_write();
  const Tables& t = tables();
  m_session.transact("creating " + ctx(spec.name), [&](pqxx::work&) {
    m_session.exec("SELECT pg_advisory_xact_lock(hashtext($1))", {Param("vstash:" + t.prefix)});
    // Under the prefix's lock no other creator runs, and the catalog row is locked once read.
    PgDatasetRecords records(m_session, t, true);
    catalog::Catalog(records).create(spec);
  });
}

std::optional<DatasetInfo> PgvectorBackend::dataset_info(const std::string& dataset) {
  std::optional<DatasetInfo> out;
  const Tables& t = tables();
  m_session.transact("reading " + ctx(dataset), [&](pqxx::work&) {
    PgDatasetRecords records(m_session, t);
    if (auto record = catalog::Catalog(records).find(dataset)) {
      out = info_of(entry_of(*record));
    }
  });
  return out;
}

std::vector<DatasetInfo> PgvectorBackend::list_datasets() {
  std::vector<DatasetInfo> out;
  const Tables& t = tables();
  m_session.transact("listing datasets", [&](pqxx::work&) {
    for (const auto& record : PgDatasetRecords(m_session, t).list()) {
      out.push_back(info_of(entry_of(record)));
    }
  });
  return out;
}

DatasetInfo PgvectorBackend::info_of(const CatalogEntry& e) {
  DatasetInfo info;
  info.spec = e.spec;
  info.rows = e.rows;
  info.next_index = e.next_index;
  const std::string table = m_session.quote(e.table);
  const Result size = m_session.exec("SELECT COALESCE(pg_total_relation_size(to_regclass($1)), 0)", {Param(table)});
  info.bytes = size.int_text(0, 0);
  info.extra["table"] = e.table;
  info.extra["index"] = std::string(index_kind_name(m_index.kind));
  const Result idx = m_session.exec(
      "SELECT am.amname, pg_relation_size(c.oid), COALESCE(array_to_string(c.reloptions, ','), '') FROM pg_index i "
      "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
      "WHERE i.indrelid = to_regclass($1) AND am.amname IN ('hnsw', 'ivfflat')",
      {Param(table)});
  if (idx.rows() > 0) {
    info.extra["index"] = idx.text(0, 0);
    info.extra["index_built"] = true;
    info.extra["index_bytes"] = idx.int_text(0, 1);
    info.extra["index_parameters"] = idx.text(0, 2);
  } else {
    info.extra["index_built"] = false;
    if (m_index.kind != IndexKind::none) {
      info.extra["index_pending"] = e.spec.dimension() > k_max_index_dimension
                                        ? "never: more than 2000 dimensions, searched exactly"
                                        : fmt::format(
                                              "built at the end of an ingest (or by the first query) "
                                              "once the dataset has {} rows",
                                              k_index_min_rows);
    }
  }
  return info;
}

bool PgvectorBackend::drop_dataset(const std::string& dataset) {
  bool existed = false;
  note_write();
  const Tables& t = tables();
  m_session.transact("dropping " + ctx(dataset), [&](pqxx::work&) {
    m_session.exec("SELECT pg_advisory_xact_lock(hashtext($1))", {Param("vstash:" + t.prefix)});
    PgDatasetRecords records(m_session, t, true);
    const auto record = records.get(dataset);
    if (!record || !records.remove(dataset)) {
      return;
    }
    m_indexed.erase(entry_of(*record).table);
    existed = true;
  });
  return existed;
}

}  // namespace vstash::backends::pgvector
