// SPDX-License-Identifier: MIT
// The local store: one SQLite file, the default backend.
//
// Layout 2 (localschema.cpp, versioned by meta.layout_version; a newer version is refused,
// layout 1 is migrated by the first read-write open and refused by a read-only one):
//   datasets  one row per dataset: spec, next_index, live row count, byte count, a version
//             bumped by every change to its rows, and its segment: generation, committed
//             slots, in_order (live rows are slots 0..n-1 in index order)
//   rows      (dataset_id, idx, id, slot, metadata): slot is the row's record in the
//             segment file, metadata JSON text or NULL; unique on (dataset_id, idx) and on
//             (dataset_id, id)
//   STORE.segments/<dataset id>-<generation>.rows  the records: sample bytes then label
//             bytes, fixed width (localsegments.hpp), read through one mapping
//   checkpoints + checkpoint_arrays (localcheckpoints.cpp), progress (localprogress.cpp)
//
// Commit protocol: a writer takes SQLite's write lock (BEGIN IMMEDIATE), appends records
// past the committed slot count with pwrite, fdatasyncs them, then inserts the rows naming
// them and the new slot count, and commits. A committed slot is never written again: an
// update appends the new version and repoints the row, a delete drops the row (its slot is
// garbage). Readers read the slot count in their read transaction and never look past it,
// so they never see uncommitted or torn records. Compaction (compact(), and automatically
// when a write leaves more than half of at least 1024 slots dead) copies the live records
// in index order to generation + 1, syncs, repoints the rows and bumps the generation in one
// transaction, then unlinks the old file (a reader's mapping of it stays valid; a reader
// whose snapshot names a file already gone starts again in a new snapshot). Files of a
// generation SQLite does not name are swept by the next writer's first write.
//
// Crash safety: every mutating call is one transaction (BEGIN IMMEDIATE ... COMMIT), and
// the store runs in WAL mode. A process killed mid-ingest (kill -9) leaves the file at the
// last committed write_rows call: the half-written batch is in the WAL without a commit
// frame and is ignored on the next open; records it appended lie past the committed slot
// count, unread, and the next writer overwrites them. synchronous=NORMAL keeps that
// guarantee for process crashes; checkpoint saves use FULL so they also survive power loss.
//
// Concurrency (localconnections.hpp): one writer connection behind a mutex (SQLite allows one writer per file;
// other processes wait up to k_busy_timeout_ms, then RetryableError) and a pool of reader
// connections, one per concurrent reading thread. Each read runs in its own read
// transaction, so it sees one consistent snapshot, and WAL lets it proceed while a long
// write is in progress in this or another process.
//
// Upsert rule: writing an existing id replaces the whole row. The row takes the index given
// in batch.indices; with auto-assigned indices it keeps its old index, so re-sending a
// batch changes nothing. A given index already held by another id is a ConflictError.
#include "backends/local/localbackend.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <type_traits>

#include "backends/common/rowcheck.hpp"
#include "backends/common/scoring.hpp"
#include "backends/local/localcatalog.hpp"
#include "backends/local/localcheckpoints.hpp"
#include "backends/local/localconnections.hpp"
#include "backends/local/localindex.hpp"
#include "backends/local/localprogress.hpp"
#include "backends/local/localsamplereader.hpp"
#include "backends/local/localstore.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"

namespace vstash::backends::local {

namespace {

class LocalBackend final : public Backend {
 public:
  LocalBackend(std::string path, Access access, HnswParams hnsw = {})
      : m_path(std::move(path)), m_hnsw(hnsw), m_db(m_path, access), m_checkpoints(m_db), m_progress(m_db) {}

  CheckpointStore& checkpoints() override { return m_checkpoints; }
  ProgressStore& progress() override { return m_progress; }

  std::string kind() const override { return "local"; }

  void create_dataset(const DatasetSpec& spec) override {
    check_spec(spec);
    write([&](Connection& c) {
      LocalDatasetRecords records(c, m_db.obsolete());
      catalog::Catalog(records).create(spec);
    });
  }

  std::optional<DatasetInfo> dataset_info(const std::string& dataset) override {
    return read([&](Connection& c) -> std::optional<DatasetInfo> {
      auto r = find_dataset(c, dataset);
      return r ? std::optional(r->info()) : std::nullopt;
    });
  }

  std::vector<DatasetInfo> list_datasets() override {
    return read([&](Connection& c) {
      std::vector<DatasetInfo> out;
      for (const auto& r : all_datasets(c)) {
        out.push_back(r.info());
      }
      return out;
    });
  }

  bool drop_dataset(const std::string& dataset) override {
    return write([&](Connection& c) { return LocalDatasetRecords(c, m_db.obsolete()).remove(dataset); });
  }

  void write_rows(const std::string& dataset, const RowBatch& batch) override {
    write([&](Connection& c) {
      auto ds = require_dataset(c, dataset);
      check_batch(ds.spec, batch);
      for (const auto idx : batch.indices) {
        if (idx < 0) {
          throw UsageError(fmt::format("dataset \"{}\": negative index {}", dataset, idx));
        }
      }
      auto counters = RowCounters::of(ds);
      write_batch(c, ds, batch, counters);
      compact_rows(c, ds, counters, false, m_db.obsolete());
      save_counters(c, ds.id, counters);
    });
  }

  RowBatch read_rows(const std::string& dataset, int64_t offset, int64_t count) override {
    if (offset < 0 || count < 0) {
      throw UsageError(fmt::format("dataset \"{}\": negative offset or count ({}, {})", dataset, offset, count));
    }
    return read([&](Connection& c) {
      auto ds = require_dataset(c, dataset);
      const auto seg = segment(ds);
      BatchBuilder out(ds, seg.get());
      const int64_t end = std::min(ds.row_count, offset + std::min(count, ds.row_count));
      if (offset >= end) {
        return out.finish();
      }
      out.reserve(static_cast<size_t>(end - offset));
      int64_t first = offset;
      int64_t last = end - 1;
      if (!ds.dense()) {
        const auto o = order(c, ds, true);
        first = o->index[static_cast<size_t>(first)];
        last = o->index[static_cast<size_t>(last)];
      }
      for_each_row(c, ds, first, last,
                   [&](int64_t idx, int64_t slot, const Stmt* row) { out.add_row(idx, slot, row); });
      return out.finish();
    });
  }

  RowBatch read_positions(const std::string& dataset, const std::vector<int64_t>& positions) override {
    return gather(dataset, positions, true);
  }

  RowBatch read_samples(const std::string& dataset, const std::vector<int64_t>& positions) override {
    return gather(dataset, positions, false);
  }

  std::unique_ptr<SampleReader> sample_reader(const std::string& dataset) override {
    return read([&](Connection& c) {
      auto ds = require_dataset(c, dataset);
      return make_sample_reader(ds, segment(ds), ds.in_order ? nullptr : order(c, ds, true));
    });
  }

  RowBatch fetch(const std::string& dataset, const std::vector<std::string>& ids) override {
    return read([&](Connection& c) {
      auto ds = require_dataset(c, dataset);
      const auto seg = segment(ds);
      BatchBuilder out(ds, seg.get());
      for (const auto& id : ids) {
        if (const auto r = row_with_id(c, ds, id)) {
          out.add_record(r->slot);
          out.batch().indices.push_back(r->idx);
          out.batch().ids.push_back(r->id);
          out.batch().metadata.push_back(r->metadata());
        }
      }
      return out.finish();
    });
  }

  std::vector<std::string> compact(const std::string& dataset) override {
    std::vector<std::string> out;
    write([&](Connection& c) {
      std::vector<DatasetRecord> targets;
      if (dataset.empty()) {
        targets = all_datasets(c);
      } else {
        targets.push_back(require_dataset(c, dataset));
      }
      for (const auto& ds : targets) {
        auto counters = RowCounters::of(ds);
        const int64_t dead = ds.slots - ds.row_count;
        if (compact_rows(c, ds, counters, true, m_db.obsolete())) {
          save_counters(c, ds.id, counters);
          out.push_back(fmt::format("dataset \"{}\": {} rows, {} dead slots reclaimed ({} bytes)", ds.spec.name,
                                    ds.row_count, dead, dead * static_cast<int64_t>(ds.record_bytes())));
        } else {
          out.push_back(fmt::format("dataset \"{}\": {} rows, nothing to reclaim", ds.spec.name, ds.row_count));
        }
      }
    });
    return out;
  }

  void update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                  const std::optional<json>& metadata) override {
    write([&](Connection& c) {
      auto ds = require_dataset(c, dataset);
      auto counters = RowCounters::of(ds);
      update_one(c, ds, id, sample, metadata, counters);
      compact_rows(c, ds, counters, false, m_db.obsolete());
      save_counters(c, ds.id, counters);
    });
  }

  int64_t delete_ids(const std::string& dataset, const std::vector<std::string>& ids) override {
    return write([&](Connection& c) {
      auto ds = require_dataset(c, dataset);
      auto counters = RowCounters::of(ds);
      int64_t n = 0;
      for (const auto& id : ids) {
        n += delete_by_id(c, ds, id, counters) ? 1 : 0;
      }
      compact_rows(c, ds, counters, false, m_db.obsolete());
      save_counters(c, ds.id, counters);
      return n;
    });
  }

  int64_t delete_where(const std::string& dataset, const Filter& filter) override {
    return write([&](Connection& c) {
      auto ds = require_dataset(c, dataset);
      const auto victims = matching_indices(c, ds, filter);
      auto counters = RowCounters::of(ds);
      for (const auto idx : victims) {
        delete_by_index(c, ds, idx, counters);
      }
      compact_rows(c, ds, counters, false, m_db.obsolete());
      save_counters(c, ds.id, counters);
      return static_cast<int64_t>(victims.size());
    });
  }

  int64_t count(const std::string& dataset, const Filter* filter) override {
    return read([&](Connection& c) {
      auto ds = require_dataset(c, dataset);
      if (!filter || filter->empty()) {
        return ds.row_count;
      }
      return static_cast<int64_t>(matching_indices(c, ds, *filter).size());
    });
  }

  std::vector<QueryHit> query(const std::string& dataset, const std::vector<float>& vector,
                              const QueryOptions& options) override {
    return read([&](Connection& c) {
      const auto ds = require_dataset(c, dataset);
      if (auto hits = index_query(c, ds, vector, 1, options, m_hnsw, m_indexes)) {
        return std::move(hits->at(0));
      }
      return std::move(scan_query(c, ds, segment(ds).get(), order(c, ds).get(), vector, 1, options).at(0));
    });
  }
  std::vector<std::vector<QueryHit>> query_many(const std::string& dataset, const std::vector<float>& queries, size_t n,
                                                const QueryOptions& options) override {
    return read([&](Connection& c) {
      const auto ds = require_dataset(c, dataset);
      auto hits = index_query(c, ds, queries, n, options, m_hnsw, m_indexes);
      return hits ? std::move(*hits) : scan_query(c, ds, segment(ds).get(), order(c, ds).get(), queries, n, options);
    });
  }

  // Builds the HNSW index of a dataset above hnsw_min_rows rows unless a current one exists
  // (localindex.hpp); rows change meanwhile -> the record's version is stale, never wrong.
  std::string finish_ingest(const std::string& dataset, const IndexProgressFn& progress) override {
    m_db.require_writer();
    const auto [ds, record] = read([&](Connection& c) {
      auto d = require_dataset(c, dataset);
      return std::pair(d, find_index_record(c, d.id));
    });
    if (ds.row_count <= m_hnsw.min_rows || (record && record->version == ds.version)) {
      return {};
    }
    const auto built = build_index_file(*this, ds, m_path, m_hnsw, progress);
    write([&](Connection& c) {
      if (auto now = find_dataset(c, dataset); now && now->id == ds.id) {
        save_index_record(c, ds.id, built);
      }
    });
    if (progress) {
      progress({"done", built.rows, built.rows});
    }
    return fmt::format("built the hnsw index of \"{}\" ({} rows, m={}, ef_construction={}){}", dataset, built.rows,
                       built.m, built.ef_construction,
                       built.calibration ? "; " + describe_calibration(*built.calibration, built.rows) : "");
  }

  Stats stats() override {
    Stats s = read([&](Connection& c) {
      Stats st;
      for (const auto& r : all_datasets(c)) {
        st.datasets.push_back(r.info());
        st.extra["index"][r.spec.name] = describe_index(find_index_record(c, r.id), r, m_hnsw);
      }
      st.checkpoints_per_model = checkpoint_counts(c);
      st.extra["layout_version"] = read_layout_version(c);
      return st;
    });
    s.backend = "local";
    s.location = m_path;
    std::error_code ec;
    for (const auto& f : {m_path, m_path + "-wal"}) {
      const auto n = std::filesystem::file_size(f, ec);
      s.store_bytes += ec ? 0 : static_cast<int64_t>(n);
    }
    s.extra["sqlite_version"] = sqlite3_libversion();
    s.extra["path"] = m_path;
    return s;
  }

 private:
  template <class F>
  std::invoke_result_t<F&, Connection&> write(F&& f) {
    return m_db.write(std::forward<F>(f));
  }
  template <class F>
  std::invoke_result_t<F&, Connection&> read(F&& f) {
    return m_db.read(std::forward<F>(f));
  }

  // The rows at positions: records gathered from the mapping; ids, indices and metadata from
  // SQLite when with_ids.
  RowBatch gather(const std::string& dataset, const std::vector<int64_t>& positions, bool with_ids) {
    return read([&](Connection& c) {
      auto ds = require_dataset(c, dataset);
      for (const auto p : positions) {
        if (p < 0 || p >= ds.row_count) {
          throw UsageError(
              fmt::format("dataset \"{}\": position {} is out of range ({} rows)", dataset, p, ds.row_count));
        }
      }
      const auto seg = segment(ds);
      // Position -> slot (and index): the identity for an in-order dataset.
      const auto o = ds.in_order && (!with_ids || ds.dense()) ? nullptr : order(c, ds, true);
      BatchBuilder out(ds, seg.get());
      out.reserve(positions.size());
      RowBatch& b = out.batch();
      for (const auto p : positions) {
        const auto at = static_cast<size_t>(p);
        out.add_record(o ? o->slot[at] : p);
        if (!with_ids) {
          continue;
        }
        const int64_t idx = o ? o->index[at] : p;
        auto r = row_at_index(c, ds, idx);
        if (!r) {
          throw Error(fmt::format("{}: dataset \"{}\": row at position {} vanished", m_path, dataset, p));
        }
        b.indices.push_back(idx);
        b.ids.push_back(std::move(r->id));
        b.metadata.push_back(r->metadata());
      }
      return out.finish();
    });
  }

  // The mapping of the dataset's segment covering the slots this snapshot committed; one
  // mapping per dataset is kept and replaced when a later snapshot needs more.
  std::shared_ptr<const SegmentMap> segment(const DatasetRecord& ds) {
    std::lock_guard lock(m_cache_mutex);
    auto& cached = m_segments[ds.id];
    if (!cached.map || cached.generation != ds.generation || cached.map->slots() < ds.slots) {
      cached.map = SegmentMap::open(ds.segment(m_path), ds.record_bytes(), ds.slots);
      cached.generation = ds.generation;
    }
    return cached.map;
  }

  // Index and slot per position for a dataset that is not plain (null when it is, unless
  // `always`), cached per dataset version: re-reading it for every batch would cost a full
  // index scan per batch.
  std::shared_ptr<const RowOrder> order(Connection& c, const DatasetRecord& ds, bool always = false) {
    if (ds.plain() && !always) {
      return nullptr;
    }
    {
      std::lock_guard lock(m_cache_mutex);
      auto it = m_order_cache.find(ds.id);
      if (it != m_order_cache.end() && it->second.version == ds.version) {
        return it->second.order;
      }
    }
    std::shared_ptr<const RowOrder> o = load_order(c, ds);
    std::lock_guard lock(m_cache_mutex);
    m_order_cache[ds.id] = {ds.version, o};
    return o;
  }

  struct CachedOrder {
    int64_t version = -1;
    std::shared_ptr<const RowOrder> order;
  };
  struct CachedSegment {
    int64_t generation = 0;
    std::shared_ptr<const SegmentMap> map;
  };

  std::string m_path;
  HnswParams m_hnsw;
  IndexCache m_indexes;
  Connections m_db;
  LocalCheckpoints m_checkpoints;
  LocalProgress m_progress;
  std::mutex m_cache_mutex;
  std::map<int64_t, CachedOrder> m_order_cache;
  std::map<int64_t, CachedSegment> m_segments;
};

std::string expand_home(std::string path) {
  if (path == "~" || path.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    if (home) {
      path = std::string(home) + path.substr(1);
    }
  }
  return path;
}

// The profile's `path` (default: default_local_path()), ~ expanded.
std::string store_path(const Profile& profile) {
  const std::string path = expand_home(profile.get_string("path", default_local_path()));
  if (path.empty()) {
    throw UsageError(fmt::format("profile \"{}\" ({}): key \"path\" is empty", profile.name(), profile.source()));
  }
  return path;
}

}  // namespace

// The store is opened eagerly: a bad path, a foreign file or a newer layout is reported by
// the command that names the profile, before any work starts.
std::unique_ptr<Backend> create(const Profile& profile) {
  const std::string path = store_path(profile);
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      throw Error(fmt::format("{}: cannot create directory \"{}\": {}", path, parent.string(), ec.message()));
    }
  }
  return std::make_unique<LocalBackend>(path, Access::read_write, hnsw_params(profile));
}

std::unique_ptr<Backend> open_read_only(const Profile& profile) {
  const std::string path = store_path(profile);
  std::error_code ec;
  if (std::filesystem::status(path, ec).type() == std::filesystem::file_type::not_found) {
    throw NotFoundError(fmt::format("{}: no local store here (check the profile's path)", path));
  }
  return std::make_unique<LocalBackend>(path, Access::read_only, hnsw_params(profile));
}

}  // namespace vstash::backends::local
