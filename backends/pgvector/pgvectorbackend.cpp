// SPDX-License-Identifier: MIT
// The pgvector store: datasets, rows, queries and stats (checkpoints and progress are in
// pgcheckpoints.cpp). Connects lazily at the first operation and creates its tables then.
//
// Ingest: rows go to the server with binary COPY, never INSERT per row. A batch is first
// COPYed straight into the rows table under a savepoint; only if an id already exists (a
// re-sent batch, a resumed ingest) is it rolled back and redone through a temporary staging
// table and INSERT ... SELECT ... ON CONFLICT (id) DO UPDATE, all in one transaction.
//
// ANN index: built lazily by the first query that finds the dataset with at least
// k_index_min_rows rows and no index (so bulk loads never pay for index maintenance),
// and then kept: later writes update it in place. Smaller datasets are searched exactly.
#include "backends/pgvector/pgvectorbackend.hpp"

#include <fmt/format.h>
#include <chrono>
#include <cmath>
#include <future>
#include <set>
#include <unordered_map>

#include "backends/common/rowcheck.hpp"
#include "backends/pgvector/pgcheckpoints.hpp"
#include "backends/pgvector/pgcopy.hpp"
#include "backends/pgvector/pgfilter.hpp"
#include "backends/pgvector/pgindexprogress.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"

namespace vstash::backends::pgvector {

namespace {
using json = nlohmann::json;

std::string vector_literal(const std::vector<float>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += fmt::format("{}", v[i]);
  }
  return out + "]";
}

double float8(std::string_view wire) {
  uint64_t u = 0;
  for (size_t i = 0; i < 8; ++i) {
    u = (u << 8) | static_cast<unsigned char>(wire[i]);
  }
  double d = 0;
  std::memcpy(&d, &u, 8);
  return d;
}

std::string ids_json(const std::vector<std::string>& ids) { return json(ids).dump(); }

const char* distance_operator(Metric m) {
  switch (m) {
    case Metric::cosine:
      return "<=>";
    case Metric::euclidean:
      return "<->";
    case Metric::dot:
      return "<#>";
  }
  return "<=>";
}

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

// Shared definitions (backend.hpp): cosine similarity, L2 distance, inner product.
double score_from_distance(Metric m, double d) {
  if (std::isnan(d)) {
    return 0;  // pgvector's cosine distance to a zero vector; exact_score says 0
  }
  switch (m) {
    case Metric::cosine:
      return 1.0 - d;
    case Metric::euclidean:
      return d;
    case Metric::dot:
      return -d;
  }
  return d;
}

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

constexpr int64_t k_max_dimension = 16000;       // pgvector's vector type
constexpr int64_t k_max_index_dimension = 2000;  // hnsw and ivfflat on vector
constexpr int64_t k_index_min_rows = 1000;       // below this an exact scan is as fast

enum class IndexKind { none, hnsw, ivfflat };
std::string_view index_kind_name(IndexKind k) {
  return k == IndexKind::hnsw ? "hnsw" : k == IndexKind::ivfflat ? "ivfflat" : "none";
}

constexpr int64_t k_default_ef_search = 200;

struct IndexSettings {
  IndexKind kind = IndexKind::hnsw;
  int64_t m = 16;
  int64_t ef_construction = 64;
  // pgvector's own default (40) found 39% of the true top 10 on 100k x 128 random vectors
  // (issue 16); 200 searches five times wider (docs/backends.md); `query --exact` is exact.
  int64_t ef_search = k_default_ef_search;
  int64_t lists = 0;   // 0: from the row count at build time
  int64_t probes = 0;  // 0: sqrt(lists)
};

class PgvectorBackend final : public Backend, public CheckpointStore, public ProgressStore {
 public:
  CheckpointStore& checkpoints() override { return *this; }
  ProgressStore& progress() override { return *this; }
  explicit PgvectorBackend(const Profile& p);
  std::string kind() const override { return "pgvector"; }

  void create_dataset(const DatasetSpec& spec) override;
  std::optional<DatasetInfo> dataset_info(const std::string& dataset) override;
  std::vector<DatasetInfo> list_datasets() override;
  bool drop_dataset(const std::string& dataset) override;

  void write_rows(const std::string& dataset, const RowBatch& batch) override;
  RowBatch read_rows(const std::string& dataset, int64_t offset, int64_t count) override;
  RowBatch read_positions(const std::string& dataset, const std::vector<int64_t>& positions) override;
  RowBatch fetch(const std::string& dataset, const std::vector<std::string>& ids) override;
  void update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                  const std::optional<json>& metadata) override;
  int64_t delete_ids(const std::string& dataset, const std::vector<std::string>& ids) override;
  int64_t delete_where(const std::string& dataset, const Filter& filter) override;
  int64_t count(const std::string& dataset, const Filter* filter) override;
  std::vector<QueryHit> query(const std::string& dataset, const std::vector<float>& vector,
                              const QueryOptions& options) override;

  std::string save_checkpoint(const Checkpoint& c) override { return checkpoints::save(m_session, tables(), c); }
  Checkpoint load_checkpoint(const std::string& path) override { return checkpoints::load(m_session, tables(), path); }
  std::vector<CheckpointInfo> list_checkpoints(const std::string& model) override {
    return checkpoints::list(m_session, tables(), model);
  }
  bool delete_checkpoint(const std::string& path) override { return checkpoints::remove(m_session, tables(), path); }
  void record_progress(const ProgressRecord& r) override { checkpoints::record_progress(m_session, tables(), r); }
  std::vector<ProgressRecord> list_progress(const std::string& run) override {
    return checkpoints::list_progress(m_session, tables(), run);
  }
  Stats stats() override;
  // Concurrent COPYs into one table proceed in parallel (explicit indices take the catalog
  // lock only for the final counter update), so two connections keep both the client's
  // encoder and a server backend busy.
  int ingest_writers() const override { return 2; }
  std::string finish_ingest(const std::string& dataset, const IndexProgressFn& progress) override;

 private:
  Tables& tables();
  std::string ctx(const std::string& dataset) const;
  CatalogEntry require(const std::string& dataset, bool for_update = false);
  DatasetInfo info_of(const CatalogEntry& e);
  RowBatch decode_rows(const CatalogEntry& e, const Result& r, int first_col) const;
  int64_t delete_matching(const std::string& dataset, const std::string& what,
                          const std::function<std::pair<std::string, std::vector<Param>>()>& where);
  // True if the dataset has an ANN index to use (building it now if it is due); `built` is
  // set when this call built it.
  bool ensure_index(const CatalogEntry& e, bool* built = nullptr, const IndexProgressFn& progress = {});
  void build_index(const CatalogEntry& e, const IndexProgressFn& progress);
  int64_t lists_for(int64_t rows) const;

  Session m_session;
  std::string m_prefix;
  IndexSettings m_index;
  Tables m_tables;
  bool m_ready = false;
  std::set<std::string> m_indexed;  // rows tables known to have their ANN index
};

PgvectorBackend::PgvectorBackend(const Profile& p)
    : m_session(
          [&] {
            ConnectionSettings s;
            s.host = p.get_string("host", "localhost");
            s.port = p.get_int("port", 5432);
            s.database = p.get_string("database", "postgres");
            s.user = p.get_string("user", "");
            s.password = p.get_string("password", "");
            s.sslmode = p.get_string("sslmode", "");
            s.tls_ca = p.get_string("tls_ca", "");
            s.tls_cert = p.get_string("tls_cert", "");
            s.tls_key = p.get_string("tls_key", "");
            s.connect_timeout_s = p.get_int("connect_timeout", 10);
            s.statement_timeout_ms = p.get_int("statement_timeout_ms", 0);
            return s;
          }(),
          p.secrets()) {
  const std::string prefix = p.get_string("table_name", "vstash");
  check_prefix(prefix);
  m_prefix = prefix;
  const std::string index = p.get_string("index", "hnsw");
  if (index == "hnsw") {
    m_index.kind = IndexKind::hnsw;
  } else if (index == "ivfflat") {
    m_index.kind = IndexKind::ivfflat;
  } else if (index == "none") {
    m_index.kind = IndexKind::none;
  } else {
    throw UsageError(
        fmt::format("profile \"{}\" ({}): index \"{}\" is not hnsw, ivfflat or none", p.name(), p.source(), index));
  }
  m_index.m = p.get_int("m", 16);
  m_index.ef_construction = p.get_int("ef_construction", 64);
  m_index.ef_search = p.get_int("ef_search", k_default_ef_search);
  m_index.lists = p.get_int("lists", 0);
  m_index.probes = p.get_int("probes", 0);
  const auto positive = [&](const char* key, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) {
      throw UsageError(fmt::format("profile \"{}\" ({}): {} must be between {} and {}, got {}", p.name(), p.source(),
                                   key, lo, hi, v));
    }
  };
  positive("port", m_session.settings().port, 1, 65535);
  positive("connect_timeout", m_session.settings().connect_timeout_s, 0, 86400);
  positive("statement_timeout_ms", m_session.settings().statement_timeout_ms, 0, INT32_MAX);
  positive("m", m_index.m, 2, 100);
  positive("ef_construction", m_index.ef_construction, 4, 1000);
  positive("ef_search", m_index.ef_search, 1, 1000);
  positive("lists", m_index.lists, 0, 32768);
  positive("probes", m_index.probes, 0, 32768);
}

Tables& PgvectorBackend::tables() {
  if (!m_ready) {
    m_session.conn();
    m_tables = table_names(m_session, m_prefix);
    ensure_schema(m_session, m_tables);
    m_ready = true;
  }
  return m_tables;
}

std::string PgvectorBackend::ctx(const std::string& dataset) const { return fmt::format("dataset \"{}\"", dataset); }

CatalogEntry PgvectorBackend::require(const std::string& dataset, bool for_update) {
  auto e = read_catalog(m_session, tables(), dataset, for_update);
  if (!e) {
    throw NotFoundError(fmt::format("{}: dataset \"{}\" does not exist", m_session.location(), dataset));
  }
  return *e;
}

// --- datasets ---------------------------------------------------------------------------

void PgvectorBackend::create_dataset(const DatasetSpec& spec) {
  if (spec.name.empty()) {
    throw UsageError("pgvector: dataset name must not be empty");
  }
  if (spec.dimension() < 1 || spec.dimension() > k_max_dimension) {
    throw UsageError(fmt::format("dataset \"{}\": pgvector holds 1 to {} dimensions, got {}", spec.name,
                                 k_max_dimension, spec.dimension()));
  }
  const Tables& t = tables();
  m_session.transact("creating " + ctx(spec.name), [&](pqxx::work&) {
    m_session.exec("SELECT pg_advisory_xact_lock(hashtext($1))", {Param("vstash:" + t.prefix)});
    const auto existing = read_catalog(m_session, t, spec.name, true);
    if (!existing) {
      create_catalog_entry(m_session, t, spec);
      return;
    }
    if (!specs_compatible(existing->spec, spec)) {
      throw ConflictError(fmt::format("dataset \"{}\": exists as {}, requested {}", spec.name,
                                      describe_spec(existing->spec), describe_spec(spec)));
    }
    if (spec.metadata.is_object() && !spec.metadata.empty()) {
      m_session.exec(fmt::format("UPDATE {} SET metadata = metadata || $2::jsonb WHERE name = $1", t.datasets),
                     {Param(spec.name), Param(spec.metadata.dump())});
    }
  });
}

std::optional<DatasetInfo> PgvectorBackend::dataset_info(const std::string& dataset) {
  std::optional<DatasetInfo> out;
  const Tables& t = tables();
  m_session.transact("reading " + ctx(dataset), [&](pqxx::work&) {
    if (auto e = read_catalog(m_session, t, dataset)) {
      out = info_of(*e);
    }
  });
  return out;
}

std::vector<DatasetInfo> PgvectorBackend::list_datasets() {
  std::vector<DatasetInfo> out;
  const Tables& t = tables();
  m_session.transact("listing datasets", [&](pqxx::work&) {
    for (const auto& e : read_catalog_all(m_session, t)) {
      out.push_back(info_of(e));
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
  const Tables& t = tables();
  m_session.transact("dropping " + ctx(dataset), [&](pqxx::work&) {
    m_session.exec("SELECT pg_advisory_xact_lock(hashtext($1))", {Param("vstash:" + t.prefix)});
    const auto e = read_catalog(m_session, t, dataset, true);
    if (!e) {
      return;
    }
    m_session.exec("DROP TABLE IF EXISTS " + m_session.quote(e->table));
    m_session.exec(fmt::format("DELETE FROM {} WHERE name = $1", t.datasets), {Param(dataset)});
    m_indexed.erase(e->table);
    existed = true;
  });
  return existed;
}

// --- rows -------------------------------------------------------------------------------

void PgvectorBackend::write_rows(const std::string& dataset, const RowBatch& batch) {
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
    const auto await_verdict = [&] {
      if (!verified) {
        verified = true;
        verdict.get();
      }
    };
    std::vector<int64_t> indices = batch.indices;
    if (indices.empty()) {
      for (size_t i = 0; i < batch.size(); ++i) {
        indices.push_back(e.next_index + static_cast<int64_t>(i));
      }
    }
    int64_t highest = -1;
    for (size_t i = 0; i < indices.size(); ++i) {
      if (indices[i] < 0) {
        throw UsageError(
            fmt::format("dataset \"{}\": row \"{}\": negative index {}", dataset, batch.ids[i], indices[i]));
      }
      highest = std::max(highest, indices[i]);
    }
    const std::string table = m_session.quote(e.table);
    const auto produce = [&](CopyEncoder& enc) {
      encode_rows(enc, e.spec, batch, indices);
      await_verdict();
    };
    int64_t fresh = static_cast<int64_t>(batch.size());
    bool direct = true;
    // Without the lock another writer may have added rows since the catalog was read, so
    // only a locked, empty table can skip the savepoint.
    const bool may_conflict = e.rows > 0 || !auto_index;
    if (may_conflict) {
      m_session.exec("SAVEPOINT vstash_copy");
    }
    try {
      copy_in(m_session.raw(), fmt::format("COPY {} ({}) FROM STDIN (FORMAT BINARY)", table, k_row_columns), produce);
    } catch (const ServerError& err) {
      // Only an existing id sends the batch down the upsert path; anything else is an error.
      if (!may_conflict || err.sqlstate() != "23505") {
        throw;
      }
      direct = false;
    }
    if (!direct) {
      m_session.exec("ROLLBACK TO SAVEPOINT vstash_copy");
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
        highest = m_session.exec("SELECT COALESCE(max(idx), -1) FROM pg_temp.vstash_stage").int_text(0, 0);
      }
      const Result r = m_session.exec(fmt::format(
          "WITH up AS (INSERT INTO {0} ({1}) SELECT {1} FROM pg_temp.vstash_stage ON CONFLICT (id) DO UPDATE SET "
          "idx = excluded.idx, embedding = excluded.embedding, sample = excluded.sample, label = excluded.label, "
          "metadata = excluded.metadata RETURNING (xmax = 0) AS fresh) SELECT count(*) FILTER (WHERE fresh) FROM up",
          table, k_row_columns));
      fresh = r.int_text(0, 0);
    }
    m_session.exec(fmt::format("UPDATE {} SET live_rows = live_rows + $2::bigint, next_index = GREATEST(next_index, "
                               "$3::bigint) WHERE name = $1",
                               t.datasets),
                   {Param(dataset), Param(fresh), Param(highest + 1)});
  });
}

RowBatch PgvectorBackend::decode_rows(const CatalogEntry& e, const Result& r, int first_col) const {
  RowBatch b;
  const int n = r.rows();
  Shape shape{n};
  shape.insert(shape.end(), e.spec.row_shape.begin(), e.spec.row_shape.end());
  b.data = Array(e.spec.dtype, shape);
  if (e.spec.label_dtype) {
    Shape ls{n};
    ls.insert(ls.end(), e.spec.label_shape.begin(), e.spec.label_shape.end());
    b.labels = Array(*e.spec.label_dtype, ls);
  }
  const int c = first_col;
  for (int i = 0; i < n; ++i) {
    b.ids.push_back(r.text(i, c));
    b.indices.push_back(r.int8(i, c + 1));
    auto dst = b.data.row(i);
    if (!r.is_null(i, c + 3)) {
      const auto raw = r.get(i, c + 3);
      if (raw.size() != dst.size()) {
        throw Error(fmt::format("{}: dataset \"{}\": row \"{}\": stored sample has {} bytes, expected {}",
                                m_session.location(), e.spec.name, b.ids.back(), raw.size(), dst.size()));
      }
      std::memcpy(dst.data(), raw.data(), dst.size());
    } else {
      const auto v = decode_vector(r.get(i, c + 2));
      if (v.size() * 4 != dst.size()) {
        throw Error(fmt::format("{}: dataset \"{}\": row \"{}\": stored vector has {} dimensions", m_session.location(),
                                e.spec.name, b.ids.back(), v.size()));
      }
      std::memcpy(dst.data(), v.data(), dst.size());
    }
    if (b.labels) {
      auto ldst = b.labels->row(i);
      const auto raw = r.is_null(i, c + 4) ? std::string_view() : r.get(i, c + 4);
      if (raw.size() != ldst.size()) {
        throw Error(fmt::format("{}: dataset \"{}\": row \"{}\": stored label has {} bytes, expected {}",
                                m_session.location(), e.spec.name, b.ids.back(), raw.size(), ldst.size()));
      }
      std::memcpy(ldst.data(), raw.data(), ldst.size());
    }
    b.metadata.push_back(r.is_null(i, c + 5) ? json(nullptr) : json::parse(r.get(i, c + 5)));
  }
  return b;
}

// Row columns for binary results: jsonb as text so the bytes are plain JSON.
constexpr const char* k_read_columns = "id, idx, embedding, sample, label, metadata::text";

RowBatch reorder(const RowBatch& in, const std::vector<size_t>& order) {
  RowBatch out;
  const auto n = static_cast<int64_t>(order.size());
  Shape shape = in.data.shape();
  shape[0] = n;
  out.data = Array(in.data.dtype(), shape);
  if (in.labels) {
    Shape ls = in.labels->shape();
    ls[0] = n;
    out.labels = Array(in.labels->dtype(), ls);
  }
  for (int64_t i = 0; i < n; ++i) {
    const size_t src = order[static_cast<size_t>(i)];
    out.ids.push_back(in.ids[src]);
    out.indices.push_back(in.indices[src]);
    out.metadata.push_back(in.metadata[src]);
    const auto from = in.data.row(static_cast<int64_t>(src));
    std::memcpy(out.data.row(i).data(), from.data(), from.size());
    if (in.labels) {
      const auto lf = in.labels->row(static_cast<int64_t>(src));
      std::memcpy(out.labels->row(i).data(), lf.data(), lf.size());
    }
  }
  return out;
}

std::string bigint_array(const std::vector<int64_t>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += fmt::format("{}", v[i]);
  }
  return out + "}";
}

RowBatch PgvectorBackend::read_rows(const std::string& dataset, int64_t offset, int64_t count) {
  if (offset < 0 || count < 0) {
    throw UsageError(fmt::format("dataset \"{}\": offset and count must not be negative", dataset));
  }
  RowBatch out;
  const Tables& t = tables();
  m_session.read("reading rows of " + ctx(dataset), [&](pqxx::work&) {
    m_session.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const CatalogEntry e = require(dataset);
    const std::string table = m_session.quote(e.table);
    // When no index was skipped or deleted, a row's position is its index: a range scan.
    const bool dense = e.rows == e.next_index;
    const std::string sql =
        dense ? fmt::format("SELECT {} FROM {} WHERE idx >= $1::bigint AND idx < $1::bigint + $2::bigint ORDER BY idx",
                            k_read_columns, table)
              : fmt::format("SELECT {} FROM {} ORDER BY idx OFFSET $1::bigint LIMIT $2::bigint", k_read_columns, table);
    out = decode_rows(e, m_session.exec(sql, {Param(offset), Param(count)}, true), 0);
  });
  (void)t;
  return out;
}

RowBatch PgvectorBackend::read_positions(const std::string& dataset, const std::vector<int64_t>& positions) {
  RowBatch out;
  tables();
  m_session.read("reading rows of " + ctx(dataset), [&](pqxx::work&) {
    m_session.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const CatalogEntry e = require(dataset);
    for (int64_t p : positions) {
      if (p < 0 || p >= e.rows) {
        throw UsageError(fmt::format("dataset \"{}\": position {} is out of range (0 to {})", dataset, p, e.rows - 1));
      }
    }
    const std::string table = m_session.quote(e.table);
    const bool dense = e.rows == e.next_index;
    const std::string sql =
        dense ? fmt::format("SELECT {}, idx FROM {} WHERE idx = ANY($1::bigint[])", k_read_columns, table)
              : fmt::format(
                    "SELECT {}, pos FROM (SELECT *, row_number() OVER (ORDER BY idx) - 1 AS pos FROM {}) r "
                    "WHERE pos = ANY($1::bigint[])",
                    k_read_columns, table);
    const Result r = m_session.exec(sql, {Param(bigint_array(positions))}, true);
    const RowBatch got = decode_rows(e, r, 0);
    std::unordered_map<int64_t, size_t> at;
    for (int i = 0; i < r.rows(); ++i) {
      at[r.int8(i, 6)] = static_cast<size_t>(i);
    }
    std::vector<size_t> order;
    for (int64_t p : positions) {
      order.push_back(at.at(p));
    }
    out = reorder(got, order);
  });
  return out;
}

RowBatch PgvectorBackend::fetch(const std::string& dataset, const std::vector<std::string>& ids) {
  RowBatch out;
  tables();
  m_session.read("fetching rows of " + ctx(dataset), [&](pqxx::work&) {
    const CatalogEntry e = require(dataset);
    const Result r =
        m_session.exec(fmt::format("SELECT {} FROM {} WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))",
                                   k_read_columns, m_session.quote(e.table)),
                       {Param(ids_json(ids))}, true);
    const RowBatch got = decode_rows(e, r, 0);
    std::unordered_map<std::string, size_t> at;
    for (size_t i = 0; i < got.ids.size(); ++i) {
      at[got.ids[i]] = i;
    }
    std::vector<size_t> order;
    for (const auto& id : ids) {
      if (auto it = at.find(id); it != at.end()) {
        order.push_back(it->second);
      }
    }
    out = reorder(got, order);
  });
  return out;
}

void PgvectorBackend::update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                                 const std::optional<json>& metadata) {
  tables();
  m_session.transact("updating row \"" + id + "\" of " + ctx(dataset), [&](pqxx::work&) {
    const CatalogEntry e = require(dataset);
    std::vector<Param> params{Param(id)};
    std::vector<std::string> sets;
    if (sample) {
      Shape with_batch{1};
      with_batch.insert(with_batch.end(), e.spec.row_shape.begin(), e.spec.row_shape.end());
      if (sample->dtype() != e.spec.dtype || (sample->shape() != e.spec.row_shape && sample->shape() != with_batch)) {
        throw UsageError(fmt::format("dataset \"{}\": row \"{}\": sample must be {} of shape {}, got {} of shape {}",
                                     dataset, id, dtype_name(e.spec.dtype), shape_to_string(e.spec.row_shape),
                                     dtype_name(sample->dtype()), shape_to_string(sample->shape())));
      }
      check_finite(*sample, {id}, dataset);
      const Array f = sample->to_float32();
      params.emplace_back(vector_literal(std::vector<float>(f.as<float>(), f.as<float>() + f.size())));
      sets.push_back(fmt::format("embedding = ${}::vector", params.size()));
      if (e.spec.dtype != DType::f32) {
        params.push_back(Param::bytes(std::string(reinterpret_cast<const char*>(sample->data()), sample->nbytes())));
        sets.push_back(fmt::format("sample = ${}::bytea", params.size()));
      }
    }
    if (metadata) {
      if (!metadata->is_object()) {
        throw UsageError(fmt::format("dataset \"{}\": row \"{}\": metadata must be a JSON object", dataset, id));
      }
      json removed = json::array();
      for (const auto& [k, v] : metadata->items()) {
        if (v.is_null()) {
          removed.push_back(k);
        }
      }
      params.emplace_back(metadata->dump());
      params.emplace_back(removed.dump());
      sets.push_back(
          fmt::format("metadata = (COALESCE(metadata, '{{}}'::jsonb) || jsonb_strip_nulls(${}::jsonb)) - "
                      "ARRAY(SELECT jsonb_array_elements_text(${}::jsonb))",
                      params.size() - 1, params.size()));
    }
    const std::string set_list = sets.empty() ? "id = id" : fmt::format("{}", fmt::join(sets, ", "));
    const Result r = m_session.exec(
        fmt::format("UPDATE {} SET {} WHERE id = $1 RETURNING 1", m_session.quote(e.table), set_list), params);
    if (r.rows() == 0) {
      throw NotFoundError(fmt::format("{}: dataset \"{}\": no row with id \"{}\"", m_session.location(), dataset, id));
    }
  });
}

int64_t PgvectorBackend::delete_matching(const std::string& dataset, const std::string& what,
                                         const std::function<std::pair<std::string, std::vector<Param>>()>& where) {
  int64_t n = 0;
  const Tables& t = tables();
  m_session.transact(what + " of " + ctx(dataset), [&](pqxx::work&) {
    const CatalogEntry e = require(dataset, true);
    auto [cond, params] = where();
    const Result r =
        m_session.exec(fmt::format("WITH d AS (DELETE FROM {} WHERE {} RETURNING 1) SELECT count(*) FROM d",
                                   m_session.quote(e.table), cond),
                       params);
    n = r.int_text(0, 0);
    m_session.exec(fmt::format("UPDATE {} SET live_rows = live_rows - $2::bigint WHERE name = $1", t.datasets),
                   {Param(dataset), Param(n)});
  });
  return n;
}

int64_t PgvectorBackend::delete_ids(const std::string& dataset, const std::vector<std::string>& ids) {
  return delete_matching(dataset, "deleting rows", [&] {
    return std::pair{std::string("id IN (SELECT jsonb_array_elements_text($1::jsonb))"),
                     std::vector<Param>{Param(ids_json(ids))}};
  });
}

int64_t PgvectorBackend::delete_where(const std::string& dataset, const Filter& filter) {
  return delete_matching(dataset, "deleting matching rows", [&] {
    const CatalogEntry e = require(dataset);
    const SqlFilter f = translate_filter(&filter, "metadata", 1, &e.spec);
    return std::pair{f.sql, std::vector<Param>(f.params.begin(), f.params.end())};
  });
}

int64_t PgvectorBackend::count(const std::string& dataset, const Filter* filter) {
  int64_t n = 0;
  tables();
  m_session.read("counting rows of " + ctx(dataset), [&](pqxx::work&) {
    const CatalogEntry e = require(dataset);
    if (filter == nullptr || filter->empty()) {
      n = e.rows;
      return;
    }
    const SqlFilter f = translate_filter(filter, "metadata", 1, &e.spec);
    n = m_session
            .exec(fmt::format("SELECT count(*) FROM {} WHERE {}", m_session.quote(e.table), f.sql),
                  std::vector<Param>(f.params.begin(), f.params.end()))
            .int_text(0, 0);
  });
  return n;
}

// --- query ------------------------------------------------------------------------------

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

std::vector<QueryHit> PgvectorBackend::query(const std::string& dataset, const std::vector<float>& vector,
                                             const QueryOptions& options) {
  tables();
  const CatalogEntry e = [&] {
    CatalogEntry out;
    m_session.read("querying " + ctx(dataset), [&](pqxx::work&) { out = require(dataset); });
    return out;
  }();
  if (static_cast<int64_t>(vector.size()) != e.spec.dimension()) {
    throw UsageError(fmt::format("dataset \"{}\": query vector has {} dimensions, the dataset {}", dataset,
                                 vector.size(), e.spec.dimension()));
  }
  for (float f : vector) {
    if (!std::isfinite(f)) {
      throw UsageError(fmt::format("dataset \"{}\": query vector holds NaN or Inf", dataset));
    }
  }
  std::vector<QueryHit> hits;
  if (options.top_k <= 0) {
    return hits;
  }
  if (options.ef && *options.ef > 1000) {
    throw UsageError(
        fmt::format("--ef: pgvector searches at most 1000 candidates (hnsw.ef_search), got {}", *options.ef));
  }
  // --exact: no index scan (the plain query's ORDER BY dist, idx cannot use one either).
  const bool ann = !options.exact && ensure_index(e);
  const bool filtered = options.filter != nullptr && !options.filter->empty();
  m_session.read("querying " + ctx(dataset), [&](pqxx::work&) {
    hits.clear();  // read() may run this twice
    if (!ann) {
      m_session.exec("SELECT set_config('enable_indexscan', 'off', true)");
    } else if (m_index.kind == IndexKind::hnsw) {
      m_session.exec(
          "SELECT set_config('hnsw.ef_search', $1, true)",
          {Param(std::max<int64_t>(options.ef.value_or(m_index.ef_search), std::min<int64_t>(options.top_k, 1000)))});
      if (filtered) {
        m_session.exec("SELECT set_config('hnsw.iterative_scan', 'strict_order', true)");
      }
    } else if (ann) {
      // --ef reads as ivfflat's probes: how much of the index a search visits.
      const int64_t probes = options.ef ? *options.ef
                             : m_index.probes > 0
                                 ? m_index.probes
                                 : std::max<int64_t>(1, std::lround(std::sqrt(static_cast<double>(lists_for(e.rows)))));
      m_session.exec("SELECT set_config('ivfflat.probes', $1, true)", {Param(probes)});
      if (filtered) {
        m_session.exec("SELECT set_config('ivfflat.iterative_scan', 'relaxed_order', true)");
      }
    }
    const SqlFilter f = translate_filter(options.filter, "metadata", 3, &e.spec);
    const std::string op = distance_operator(e.spec.metric);
    const std::string cols = fmt::format("id, idx, (embedding {} $1::vector)::float8 AS dist, {}, {}", op,
                                         options.include_values ? "embedding" : "NULL::vector",
                                         options.include_metadata ? "metadata::text" : "NULL::text");
    const std::string table = m_session.quote(e.table);
    // An index scan orders by the distance alone; the outer sort adds the idx tie-break.
    const std::string sql =
        ann ? fmt::format(
                  "SELECT * FROM (SELECT {} FROM {} WHERE {} ORDER BY embedding {} $1::vector LIMIT $2::bigint) "
                  "s ORDER BY dist, idx",
                  cols, table, f.sql, op)
            : fmt::format("SELECT {} FROM {} WHERE {} ORDER BY dist, idx LIMIT $2::bigint", cols, table, f.sql);
    std::vector<Param> params{Param(vector_literal(vector)), Param(options.top_k)};
    params.insert(params.end(), f.params.begin(), f.params.end());
    const Result r = m_session.exec(sql, params, true);
    for (int i = 0; i < r.rows(); ++i) {
      QueryHit h;
      h.id = r.text(i, 0);
      h.index = r.int8(i, 1);
      h.score = score_from_distance(e.spec.metric, float8(r.get(i, 2)));
      if (options.include_values) {
        h.values = decode_vector(r.get(i, 3));
      }
      if (options.include_metadata) {
        h.metadata = r.is_null(i, 4) ? json(nullptr) : json::parse(r.get(i, 4));
      }
      hits.push_back(std::move(h));
    }
  });
  return hits;
}

// --- stats ------------------------------------------------------------------------------

Stats PgvectorBackend::stats() {
  Stats out;
  out.backend = "pgvector";
  out.location = m_session.location();
  const Tables& t = tables();
  m_session.transact("reading statistics", [&](pqxx::work&) {
    for (const auto& e : read_catalog_all(m_session, t)) {
      out.datasets.push_back(info_of(e));
      out.store_bytes += out.datasets.back().bytes;
    }
    const Result per_model =
        m_session.exec(fmt::format("SELECT model, count(*) FROM {} GROUP BY model ORDER BY model", t.checkpoints));
    for (int i = 0; i < per_model.rows(); ++i) {
      out.checkpoints_per_model[per_model.text(i, 0)] = per_model.int_text(i, 1);
    }
    for (const auto* table : {&t.meta, &t.datasets, &t.checkpoints, &t.arrays, &t.latest, &t.progress}) {
      out.store_bytes +=
          m_session.exec("SELECT COALESCE(pg_total_relation_size(to_regclass($1)), 0)", {Param(*table)}).int_text(0, 0);
    }
    const Result v = m_session.exec(
        "SELECT current_setting('server_version'), (SELECT extversion FROM pg_extension WHERE extname = 'vector')");
    out.extra["server_version"] = v.text(0, 0);
    out.extra["extension_version"] = v.text(0, 1);
    out.extra["table_prefix"] = m_prefix;
    json index{{"type", std::string(index_kind_name(m_index.kind))}};
    if (m_index.kind == IndexKind::hnsw) {
      index["m"] = m_index.m;
      index["ef_construction"] = m_index.ef_construction;
      index["ef_search"] = m_index.ef_search;
    } else if (m_index.kind == IndexKind::ivfflat) {
      index["lists"] = m_index.lists > 0 ? json(m_index.lists) : json("rows/1000");
      index["probes"] = m_index.probes > 0 ? json(m_index.probes) : json("sqrt(lists)");
    }
    index["min_rows"] = k_index_min_rows;
    if (m_index.kind != IndexKind::none) {
      index["note"] = "approximate: raise ef_search (probes) for recall, or query --exact";
    }
    out.extra["index"] = index;
  });
  return out;
}

}  // namespace

std::unique_ptr<Backend> create(const Profile& profile) { return std::make_unique<PgvectorBackend>(profile); }

}  // namespace vstash::backends::pgvector
