// SPDX-License-Identifier: MIT
// The local HNSW index within the store (localindex.hpp): its record in SQLite (which dataset
// version a graph file covers), the profile's hnsw parameters, the cache of loaded graphs,
// queries through a graph and the build of a graph file from the store's rows. The graph
// itself is localindex.cpp.
//
// Consistency: the record (table hnsw_index) names the dataset version the file covers. Any
// change to the rows bumps the version, and a query then scans exactly until the index is
// rebuilt (`vstash index`, or `vstash ingest` without --no-index).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>

#include "backends/local/localindex.hpp"
#include "src/errors.hpp"

namespace vstash::backends::local {

// --- the record --------------------------------------------------------------------------

std::string sidecar_dir(const std::string& store_path) { return store_path + ".segments"; }

std::string index_file_name(int64_t dataset_id) { return fmt::format("{}.hnsw", dataset_id); }

namespace {
bool has_table(Connection& conn, const char* name) {
  auto s = conn.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1");
  s.bind(1, std::string(name));
  return s.step() && s.int_at(0) == 1;
}
bool has_index_table(Connection& conn) { return has_table(conn, "hnsw_index"); }

constexpr double k_ppm = 1e6;  // recall and target are stored in parts per million

// The calibration of the graph file a record names (table hnsw_calibration, keyed by the
// dataset, valid only for the version and file size it measured: a binary that predates it
// may have rebuilt the index since).
std::optional<Calibration> find_calibration(Connection& conn, int64_t dataset_id, const IndexRecord& r) {
  if (!has_table(conn, "hnsw_calibration")) {
    return std::nullopt;
  }
  auto s = conn.prepare(
      "SELECT ef, recall_ppm, tried_ef, sample, links, target_ppm, used FROM hnsw_calibration "
      "WHERE dataset_id = ?1 AND version = ?2 AND bytes = ?3");
  s.bind(1, dataset_id).bind(2, r.version).bind(3, r.bytes);
  if (!s.step()) {
    return std::nullopt;
  }
  Calibration c;
  c.ef = static_cast<int>(s.int_at(0));
  c.recall = static_cast<double>(s.int_at(1)) / k_ppm;
  c.tried_ef = static_cast<int>(s.int_at(2));
  c.sample = s.int_at(3);
  c.links = static_cast<double>(s.int_at(4));
  c.target = static_cast<double>(s.int_at(5)) / k_ppm;
  c.used = s.int_at(6) != 0;
  return c;
}

void save_calibration(Connection& conn, int64_t dataset_id, const IndexRecord& r) {
  conn.exec(
      "CREATE TABLE IF NOT EXISTS hnsw_calibration (dataset_id INTEGER PRIMARY KEY, version INTEGER NOT NULL, "
      "bytes INTEGER NOT NULL, ef INTEGER NOT NULL, recall_ppm INTEGER NOT NULL, tried_ef INTEGER NOT NULL, "
      "sample INTEGER NOT NULL, links INTEGER NOT NULL, target_ppm INTEGER NOT NULL, used INTEGER NOT NULL)");
  if (!r.calibration) {
    conn.prepare("DELETE FROM hnsw_calibration WHERE dataset_id = ?1").bind(1, dataset_id).run();
    return;
  }
  const auto& c = *r.calibration;
  conn.prepare("INSERT OR REPLACE INTO hnsw_calibration VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
      .bind(1, dataset_id)
      .bind(2, r.version)
      .bind(3, r.bytes)
      .bind(4, static_cast<int64_t>(c.ef))
      .bind(5, static_cast<int64_t>(std::llround(c.recall * k_ppm)))
      .bind(6, static_cast<int64_t>(c.tried_ef))
      .bind(7, c.sample)
      .bind(8, static_cast<int64_t>(std::llround(c.links)))
      .bind(9, static_cast<int64_t>(std::llround(c.target * k_ppm)))
      .bind(10, static_cast<int64_t>(c.used ? 1 : 0))
      .run();
}
}  // namespace

std::optional<IndexRecord> find_index_record(Connection& conn, int64_t dataset_id) {
  if (!has_index_table(conn)) {
    return std::nullopt;
  }
  auto s = conn.prepare("SELECT version, rows, file, bytes, m, ef_construction FROM hnsw_index WHERE dataset_id = ?1");
  s.bind(1, dataset_id);
  if (!s.step()) {
    return std::nullopt;
  }
  IndexRecord r;
  r.version = s.int_at(0);
  r.rows = s.int_at(1);
  r.file = s.text_at(2);
  r.bytes = s.int_at(3);
  r.m = static_cast<int>(s.int_at(4));
  r.ef_construction = static_cast<int>(s.int_at(5));
  r.calibration = find_calibration(conn, dataset_id, r);
  return r;
}

void save_index_record(Connection& conn, int64_t dataset_id, const IndexRecord& r) {
  conn.exec(
      "CREATE TABLE IF NOT EXISTS hnsw_index (dataset_id INTEGER PRIMARY KEY, version INTEGER NOT NULL, "
      "rows INTEGER NOT NULL, file TEXT NOT NULL, bytes INTEGER NOT NULL, m INTEGER NOT NULL, "
      "ef_construction INTEGER NOT NULL)");
  conn.prepare("INSERT OR REPLACE INTO hnsw_index VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
      .bind(1, dataset_id)
      .bind(2, r.version)
      .bind(3, r.rows)
      .bind(4, r.file)
      .bind(5, r.bytes)
      .bind(6, static_cast<int64_t>(r.m))
      .bind(7, static_cast<int64_t>(r.ef_construction))
      .run();
  save_calibration(conn, dataset_id, r);
}

void delete_index_record(Connection& conn, int64_t dataset_id) {
  if (has_index_table(conn)) {
    conn.prepare("DELETE FROM hnsw_index WHERE dataset_id = ?1").bind(1, dataset_id).run();
  }
  if (has_table(conn, "hnsw_calibration")) {
    conn.prepare("DELETE FROM hnsw_calibration WHERE dataset_id = ?1").bind(1, dataset_id).run();
  }
}

std::string describe_index(const std::optional<IndexRecord>& record, const DatasetRecord& ds,
                           const HnswParams& params) {
  if (!record) {
    return ds.row_count > params.min_rows ? "none (exact scan; build it with `vstash index`)"
                                          : fmt::format("none (exact scan below {} rows)", params.min_rows);
  }
  const auto what =
      fmt::format("hnsw m={} ef_construction={}, {} rows", record->m, record->ef_construction, record->rows);
  if (record->version != ds.version || record->rows != ds.row_count) {
    return what + ": stale (exact scan until rebuilt with `vstash index " + ds.spec.name + "`)";
  }
  if (params.ef_search_set || !record->calibration) {
    return what + fmt::format("; ef {} (hnsw_ef_search{})", params.ef_search,
                              params.ef_search_set ? " set in the profile" : ", not calibrated");
  }
  return what + "; " + describe_calibration(*record->calibration, record->rows);
}

// --- what the backend calls -------------------------------------------------------------

HnswParams hnsw_params(const Profile& profile) {
  HnswParams p;
  auto get = [&](const char* key, int64_t fallback, int64_t lo, int64_t hi) {
    const int64_t v = profile.get_int(key, fallback);
    if (v < lo || v > hi) {
      throw UsageError(fmt::format("profile \"{}\" ({}): key \"{}\" must be in [{}, {}], got {}", profile.name(),
                                   profile.source(), key, lo, hi, v));
    }
    return v;
  };
  p.m = static_cast<int>(get("hnsw_m", p.m, 2, 256));
  p.ef_construction = static_cast<int>(get("hnsw_ef_construction", p.ef_construction, 1, 100000));
  p.ef_search = static_cast<int>(get("hnsw_ef_search", p.ef_search, 1, 100000));
  p.min_rows = get("hnsw_min_rows", p.min_rows, 0, int64_t{1} << 40);
  p.ef_search_set = profile.has("hnsw_ef_search");
  p.target_recall = profile.get_double("hnsw_target_recall", p.target_recall);
  if (!(p.target_recall > 0 && p.target_recall <= 1)) {
    throw UsageError(fmt::format("profile \"{}\" ({}): key \"hnsw_target_recall\" must be in (0, 1], got {}",
                                 profile.name(), profile.source(), p.target_recall));
  }
  return p;
}

size_t search_breadth(std::optional<int> ef, const HnswParams& params, size_t k) {
  if (ef) {
    return std::max(static_cast<size_t>(std::max(1, *ef)), k);
  }
  const auto per_ten = static_cast<size_t>(std::max(1, params.ef_search));
  return std::max({per_ten, (per_ten * k + 9) / 10, k});
}

std::shared_ptr<const LocalIndex> IndexCache::get(const std::string& store_path, const DatasetRecord& ds,
                                                  const IndexRecord& record, size_t n) {
  std::lock_guard lock(m_mutex);
  auto& e = m_entries[ds.id];
  e.queries += static_cast<int64_t>(n);
  if (!e.index || e.version != record.version || e.bytes != record.bytes) {
    if (e.queries < k_load_after) {
      return nullptr;
    }
    const auto path = sidecar_dir(store_path) + "/" + record.file;
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    if (ec || static_cast<int64_t>(bytes) != record.bytes) {
      throw Error(
          fmt::format("{}: hnsw index of dataset \"{}\" is missing or changed on disk; rebuild it with "
                      "`vstash index {}`",
                      path, ds.spec.name, ds.spec.name));
    }
    e.index = LocalIndex::load(path, ds.spec.metric, static_cast<size_t>(ds.spec.dimension()), record.rows);
    e.version = record.version;
    e.bytes = record.bytes;
  }
  return e.index;
}

namespace {

// The graph's k best of each of n queries; queries are independent, so they are split over
// the cores.
std::vector<std::vector<TopK::Entry>> search_all(const LocalIndex& index, const std::vector<float>& q, size_t n,
                                                 size_t dim, size_t k, size_t breadth,
                                                 const std::function<bool(int64_t)>& keep) {
  std::vector<std::vector<TopK::Entry>> best(n);
  parallel_for(n, n < 8 ? 1 : std::max(1u, std::thread::hardware_concurrency()),
               [&](size_t i) { best[i] = index.search(&q[i * dim], k, breadth, keep); });
  return best;
}

// The hits of each query with their ids (and values, metadata as asked) read from the rows.
std::vector<std::vector<QueryHit>> hits_of(Connection& conn, const DatasetRecord& ds, const LocalIndex& index,
                                           const std::vector<std::vector<TopK::Entry>>& best, const QueryOptions& o) {
  const size_t n = best.size();
  std::vector<std::vector<QueryHit>> out(n);
  RowRef row;
  for (size_t i = 0; i < n; ++i) {
    for (const auto& e : best[i]) {
      QueryHit h = hit_at(conn, ds, e.index, e.score, row);
      if (o.include_values) {
        h.values = index.values(e.index);
      }
      if (o.include_metadata && row.metadata_text) {
        h.metadata = json::parse(*row.metadata_text);
      }
      out[i].push_back(std::move(h));
    }
  }
  return out;
}

}  // namespace

std::optional<std::vector<std::vector<QueryHit>>> index_query(Connection& conn, const DatasetRecord& ds,
                                                              const std::vector<float>& q, size_t n,
                                                              const QueryOptions& o, const HnswParams& params,
                                                              IndexCache& cache) {
  const auto dim = static_cast<size_t>(ds.spec.dimension());
  if (o.exact || ds.row_count <= params.min_rows || n == 0 || o.top_k <= 0 || q.size() != n * dim ||
      !std::all_of(q.begin(), q.end(), [](float v) { return std::isfinite(v); })) {
    return std::nullopt;
  }
  const auto record = find_index_record(conn, ds.id);
  if (!record || record->version != ds.version || record->rows != ds.row_count) {
    return std::nullopt;
  }
  // Calibrated (and no breadth given): its ef, or the scan if it found the index not worth it.
  HnswParams tuned = params;
  if (const auto& c = record->calibration; c && !o.ef && !params.ef_search_set) {
    if (!c->used) {
      return std::nullopt;
    }
    tuned.ef_search = c->ef;
  }
  const auto index = cache.get(conn.path(), ds, *record, n);
  if (!index) {
    return std::nullopt;
  }
  const auto k = static_cast<size_t>(std::min(o.top_k, ds.row_count));
  size_t breadth = search_breadth(o.ef, tuned, k);
  // A filter keeps the rows it matches: a selective one goes to the exact scan over its
  // candidates; otherwise the graph is searched wider by the inverse of the match ratio.
  std::vector<int64_t> matching;
  std::function<bool(int64_t)> keep;
  if (o.filter && !o.filter->empty()) {
    matching = matching_indices(conn, ds, *o.filter);
    const auto matches = static_cast<int64_t>(matching.size());
    if (matches * k_selective < ds.row_count) {
      return std::nullopt;
    }
    breadth = std::min<size_t>(
        static_cast<size_t>(ds.row_count),
        breadth * static_cast<size_t>((ds.row_count + matches - 1) / std::max<int64_t>(matches, 1)) * 2);
    keep = [&matching](int64_t i) { return std::binary_search(matching.begin(), matching.end(), i); };
  }
  const auto best = search_all(*index, q, n, dim, k, breadth, keep);
  if (std::any_of(best.begin(), best.end(), [&](const auto& b) { return b.size() < k; }) &&
      (matching.empty() || matching.size() >= k)) {
    return std::nullopt;  // the graph gave fewer than k (filtered) hits: the scan finds them all
  }
  return hits_of(conn, ds, *index, best, o);
}

namespace {
// The exact top k of sampled rows, from the block scan (backend.query_many with exact).
ExactTop exact_top(Backend& backend, const DatasetRecord& ds) {
  return [&backend, &ds](const std::vector<float>& queries, size_t n, size_t k) {
    QueryOptions o;
    o.top_k = static_cast<int64_t>(k);
    o.exact = true;
    o.include_metadata = false;
    const auto hits = backend.query_many(ds.spec.name, queries, n, o);
    std::vector<std::vector<int64_t>> out(hits.size());
    for (size_t i = 0; i < hits.size(); ++i) {
      for (const auto& h : hits[i]) {
        out[i].push_back(h.index);
      }
    }
    return out;
  };
}
}  // namespace

IndexRecord build_index_file(Backend& backend, const DatasetRecord& ds, const std::string& store_path,
                             const HnswParams& params, const IndexProgressFn& progress) {
  const auto dim = static_cast<size_t>(ds.spec.dimension());
  constexpr int64_t k_block = 16384;
  int64_t offset = 0;
  auto source = [&](std::vector<int64_t>& indices, std::vector<float>& rows) -> size_t {
    if (offset >= ds.row_count) {
      return 0;
    }
    auto batch = backend.read_rows(ds.spec.name, offset, std::min(k_block, ds.row_count - offset));
    if (batch.size() == 0) {
      offset = ds.row_count;
      return 0;
    }
    offset += static_cast<int64_t>(batch.size());
    indices = std::move(batch.indices);
    const Array f = batch.data.to_float32();
    const auto* p = reinterpret_cast<const float*>(f.data());
    rows.assign(p, p + indices.size() * dim);
    return indices.size();
  };
  Calibration calibration;
  LocalIndex::HoldOut hold_out;
  hold_out.positions = calibration_positions(static_cast<size_t>(ds.row_count));
  hold_out.before = [&](const LocalIndex& graph, const std::vector<int64_t>& held, const std::vector<float>& rows) {
    calibration = calibrate(graph, rows, held, params.target_recall, k_ef_ladder,
                            static_cast<double>(ds.row_count) / static_cast<double>(k_cost_fraction),
                            exact_top(backend, ds), progress);
  };
  const auto index =
      LocalIndex::build(ds.spec.metric, dim, static_cast<size_t>(ds.row_count), params, source, progress, &hold_out);
  const auto dir = sidecar_dir(store_path);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    throw Error(fmt::format("{}: cannot create directory: {}", dir, ec.message()));
  }
  IndexRecord r;
  r.version = ds.version;
  r.rows = static_cast<int64_t>(index->size());
  r.file = index_file_name(ds.id);
  r.bytes = index->save(dir + "/" + r.file);
  r.m = params.m;
  r.ef_construction = params.ef_construction;
  r.calibration = calibration;
  return r;
}

}  // namespace vstash::backends::local
