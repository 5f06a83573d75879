// SPDX-License-Identifier: MIT
// write_rows. Ingest: rows go to the server with binary COPY, never INSERT per row. A batch is first
// COPYed straight into the rows table under a savepoint; only if an id already exists (a
// re-sent batch, a resumed ingest) is it rolled back and redone through a temporary staging
// table and INSERT ... SELECT ... ON CONFLICT (id) DO UPDATE, all in one transaction.
#include "backends/pgvector/pgvectorstore.hpp"

#include <fmt/format.h>
#include <future>

#include "backends/common/rowcheck.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pgvector {

namespace {

// What encode_rows relies on to stay inside the batch's buffers; check_batch says the rest.
bool well_formed(const DatasetSpec& spec, const RowBatch& b) {
  const auto n = static_cast<int64_t>(b.size());
  const bool labels_ok = b.labels.has_value() == spec.label_dtype.has_value() &&
                         (!b.labels || (b.labels->dtype() == *spec.label_dtype && b.labels->ndim() >= 1 &&
                                        b.labels->rows() == n && b.labels->row_shape() == spec.label_shape));
  return b.data.dtype() == spec.dtype && b.data.ndim() >= 1 && b.data.rows() == n &&
         b.data.row_shape() == spec.row_shape && (b.indices.empty() || b.indices.size() == b.size()) &&
         (b.metadata.empty() || b.metadata.size() == b.size()) && labels_ok;
}

}  // namespace

void PgvectorBackend::write_rows(const std::string& dataset, const RowBatch& batch) {
  note_write();
  const Tables& t = tables();
  m_session.transact("writing rows to " + ctx(dataset), [&](pqxx::work&) {
    // Auto-assigned indices need next_index, so such a write locks the catalog row first and
    // holds it. With explicit indices (ingest) the lock is taken only by the counter UPDATE at
    // the end, so concurrent writers' COPYs overlap; the counters stay exact either way.
    const bool auto_index = batch.indices.empty();
    const CatalogEntry e = require(dataset, auto_index);
    // The full check (every value finite, ids unique, metadata objects) reads the whole
    // batch; it runs beside the COPY so the server is not idle meanwhile. Only the shape of
    // the batch, which the encoder relies on, is checked before the first byte is sent; a
    // failed check aborts the COPY and the transaction, so nothing is written.
    if (batch.size() == 0 || !well_formed(e.spec, batch)) {
      check_batch(e.spec, batch);  // throws the shared message
    }
    if (batch.size() == 0) {
      return;
    }
    std::future<void> verdict = std::async(std::launch::async, [&] { check_batch(e.spec, batch); });
    bool verified = false;
    int64_t highest = -1;
    const std::vector<int64_t> indices = row_indices(e, batch, &highest);
    const auto produce = [&](CopyEncoder& enc) {
      encode_rows(enc, e.spec, batch, indices);
      if (!verified) {
        verified = true;
        verdict.get();
      }
    };
    int64_t fresh = static_cast<int64_t>(batch.size());
    // Without the lock another writer may have added rows since the catalog was read, so
    // only a locked, empty table can skip the savepoint.
    const bool may_conflict = e.rows > 0 || !auto_index;
    if (may_conflict) {
      m_session.exec("SAVEPOINT vstash_copy");
    }
    try {
      copy_in(m_session.raw(),
              fmt::format("COPY {} ({}) FROM STDIN (FORMAT BINARY)", m_session.quote(e.table), k_row_columns), produce);
    } catch (const ServerError& err) {
      // Only an existing id sends the batch down the upsert path; anything else is an error.
      if (!may_conflict || err.sqlstate() != "23505") {
        throw;
      }
      m_session.exec("ROLLBACK TO SAVEPOINT vstash_copy");
      fresh = upsert_rows(e, batch, produce, &highest);
    }
    m_session.exec(fmt::format("UPDATE {} SET live_rows = live_rows + $2::bigint, next_index = GREATEST(next_index, "
                               "$3::bigint) WHERE name = $1",
                               t.datasets),
                   {Param(dataset), Param(fresh), Param(highest + 1)});
  });
}

std::vector<int64_t> PgvectorBackend::row_indices(const CatalogEntry& e, const RowBatch& batch,
                                                  int64_t* highest) const {
  std::vector<int64_t> indices = batch.indices;
  if (indices.empty()) {
    for (size_t i = 0; i < batch.size(); ++i) {
      indices.push_back(e.next_index + static_cast<int64_t>(i));
    }
  }
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0) {
      throw UsageError(
          fmt::format("dataset \"{}\": row \"{}\": negative index {}", e.spec.name, batch.ids[i], indices[i]));
    }
    *highest = std::max(*highest, indices[i]);
  }
  return indices;
}

int64_t PgvectorBackend::upsert_rows(const CatalogEntry& e, const RowBatch& batch,
                                     const std::function<void(CopyEncoder&)>& produce, int64_t* highest) {
  const std::string table = m_session.quote(e.table);
  m_session.exec(fmt::format("CREATE TEMP TABLE vstash_stage (LIKE {}) ON COMMIT DROP", table));
  copy_in(m_session.raw(), fmt::format("COPY pg_temp.vstash_stage ({}) FROM STDIN (FORMAT BINARY)", k_row_columns),
          produce);
  if (batch.indices.empty()) {
    // Auto-assigned indices (the upsert rule of backend.hpp, as the local store does it):
    // an existing id keeps its index, new ids take next_index, next_index+1, ... in
    // batch order, so re-sending a batch changes nothing.
    m_session.exec(
        fmt::format(
            "WITH fresh AS (SELECT s.id, row_number() OVER (ORDER BY s.idx) - 1 AS r FROM pg_temp.vstash_stage s "
            "WHERE NOT EXISTS (SELECT 1 FROM {0} t WHERE t.id = s.id)) UPDATE pg_temp.vstash_stage s SET idx = "
            "$1::bigint + fresh.r FROM fresh WHERE s.id = fresh.id",
            table),
        {Param(e.next_index)});
    m_session.exec(fmt::format("UPDATE pg_temp.vstash_stage s SET idx = t.idx FROM {} t WHERE t.id = s.id", table));
    *highest = m_session.exec("SELECT COALESCE(max(idx), -1) FROM pg_temp.vstash_stage").int_text(0, 0);
  }
  const Result r = m_session.exec(fmt::format(
      "WITH up AS (INSERT INTO {0} ({1}) SELECT {1} FROM pg_temp.vstash_stage ON CONFLICT (id) DO UPDATE SET "
      "idx = excluded.idx, embedding = excluded.embedding, sample = excluded.sample, label = excluded.label, "
      "metadata = excluded.metadata RETURNING (xmax = 0) AS fresh) SELECT count(*) FILTER (WHERE fresh) FROM up",
      table, k_row_columns));
  return r.int_text(0, 0);
}

}  // namespace vstash::backends::pgvector
