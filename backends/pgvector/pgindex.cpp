// SPDX-License-Identifier: MIT
// ANN index: built lazily by the first query that finds the dataset with at least
// k_index_min_rows rows and no index (so bulk loads never pay for index maintenance),
// and then kept: later writes update it in place. Smaller datasets are searched exactly.
#include "backends/pgvector/pgvectorstore.hpp"

#include <fmt/format.h>
#include <chrono>
#include <cmath>

#include "backends/pgvector/pgindexprogress.hpp"

namespace vstash::backends::pgvector {

namespace {

const char* operator_class(Metric m) {
  switch (m) {
    case Metric::cosine:
      return "vector_cosine_ops";
    case Metric::euclidean:
      return "vector_l2_ops";
    case Metric::dot:
      return "vector_ip_ops";
  }
  return "vector_cosine_ops";
}

}  // namespace

std::string PgvectorBackend::finish_ingest(const std::string& dataset, const IndexProgressFn& progress) {
  tables();
  CatalogEntry e;
  m_session.transact("reading " + ctx(dataset), [&](pqxx::work&) { e = require(dataset); });
  const auto t0 = std::chrono::steady_clock::now();
  bool built = false;
  ensure_index(e, &built, progress);
  if (!built) {
    return {};  // none configured, too few rows, or kept from before (pgvector updates it per row)
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return fmt::format("built the {} index of dataset \"{}\" ({} rows) in {:.1f} s", index_kind_name(m_index.kind),
                     dataset, e.rows, secs);
}

bool PgvectorBackend::ensure_index(const CatalogEntry& e, bool* built, const IndexProgressFn& progress) {
  if (m_index.kind == IndexKind::none || e.spec.dimension() > k_max_index_dimension) {
    return false;
  }
  if (m_indexed.count(e.table) > 0) {
    return true;
  }
  const std::string index_name = m_session.quote(ann_index_name(e.table));
  bool exists = false;
  m_session.run("checking the index of " + ctx(e.spec.name),
                [&] { exists = !m_session.exec("SELECT to_regclass($1)", {Param(index_name)}).is_null(0, 0); });
  if (!exists && e.rows < k_index_min_rows) {
    return false;
  }
  if (!exists) {
    build_index(e, progress);
    if (built != nullptr) {
      *built = true;
    }
  }
  m_indexed.insert(e.table);
  return true;
}

void PgvectorBackend::build_index(const CatalogEntry& e, const IndexProgressFn& progress) {
  std::string with;
  if (m_index.kind == IndexKind::hnsw) {
    with = fmt::format("m = {}, ef_construction = {}", m_index.m, m_index.ef_construction);
  } else {
    with = fmt::format("lists = {}", lists_for(e.rows));
  }
  m_session.transact(
      "building the " + std::string(index_kind_name(m_index.kind)) + " index of " + ctx(e.spec.name), [&](pqxx::work&) {
        // One builder per table; a waiting one finds the index done.
        m_session.exec("SELECT pg_advisory_xact_lock(hashtext($1))", {Param("vstash:index:" + e.table)});
        // A maintenance step, not a query: not bound by statement_timeout_ms.
        m_session.exec("SET LOCAL statement_timeout = 0");
        m_session.exec("SET LOCAL maintenance_work_mem = '1GB'");
        std::optional<IndexBuildWatcher> watcher;
        if (progress) {
          const int pid = PQbackendPID(m_session.raw());
          watcher.emplace(m_session.settings(), pid, progress);
        }
        m_session.exec(fmt::format("CREATE INDEX IF NOT EXISTS {} ON {} USING {} (embedding {}) WITH ({})",
                                   m_session.quote(ann_index_name(e.table)), m_session.quote(e.table),
                                   index_kind_name(m_index.kind), operator_class(e.spec.metric), with));
        if (watcher) {
          watcher->finished();
        }
      });
}

int64_t PgvectorBackend::lists_for(int64_t rows) const {
  if (m_index.lists > 0) {
    return m_index.lists;
  }
  // pgvector's advice: rows / 1000 up to 1M rows, sqrt(rows) beyond.
  const int64_t l = rows <= 1000000 ? rows / 1000 : static_cast<int64_t>(std::sqrt(static_cast<double>(rows)));
  return std::clamp<int64_t>(l, 1, 32768);
}

}  // namespace vstash::backends::pgvector
