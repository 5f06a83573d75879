// SPDX-License-Identifier: MIT
// The Redis store: datasets in chunked binary keys, exact top-k by scanning.
//
// Layout (P = profile prefix, default "vstash:"; NAME escaped by key_escape; INC is a
// random incarnation token, new on every create, so remnants of an expired or dropped
// dataset are never read as part of a new one; C = 256 rows per chunk):
//   P datasets                      set of dataset names
//   P ds:{NAME}:manifest            hash: spec (JSON), inc, next_index, nchunks, gen, layout,
//                                   ids_from, rows (live rows)
//   P ds:{NAME}:INC:ids             hash: id -> index (see "Lazy ids index"), plus the
//                                   sentinel field ""
//   P ds:{NAME}:INC:rows:N          string: the chunk's live slots and their records (id +
//                                   metadata as MessagePack), see encode_chunk_records
//   P ds:{NAME}:INC:chunk:N         string: C fixed-size slots of sample bytes
//   P ds:{NAME}:INC:labels:N        string: C fixed-size slots of label bytes
//   P ds:{NAME}:INC:live            string: each chunk's live row count, u16 LE at 2N
//   P ds:{NAME}:stage:TOKEN:N       a writer's staged samples of chunk N, renamed to chunk:N
//                                   by its commit (StagedChunks); expire after an hour
// A dataset created with S > 1 shards (manifest field "shards", profile key
// shards_per_dataset; see redisshards.cpp and docs/backends.md) keeps its chunks in their
// shards' slots as copy-on-write versions, and two more keys in its own slot:
//   P ds:{NAME/S'}:INC:rows:N:vV    (and chunk, labels) chunk N's version V, S' = N mod S
//   P ds:{NAME}:INC:vers            string: each chunk's current version, u32 LE at 4N
//   P ds:{NAME}:INC:vseq            counter: one version per mutation
//   P ds:{NAME}:INC:pending         hash: version -> chunk bound, until its mutation commits
// Row i lives in chunk i / C, slot i % C; a live row has a record in its chunk's records,
// so a batch of consecutive rows is a handful of keys, and writing a whole chunk is three
// SETs plus its ids (one value per chunk rather than a hash field per row: a fraction of
// the server's work). Every chunk below nchunks has a records key, empty or not.
//
// Lazy ids index: a hash field per row was the largest server cost of an ingest after the
// bytes themselves (85 ms of 360 per 100k rows of 768 floats), paid for lookups by id that
// a training set may never see. So the hash holds the ids of the rows in chunks below the
// manifest's ids_from, and a write adds a field only for a row below it (or an id the hash
// already holds). The first lookup by id (an upsert, update, delete or fetch) reads the
// records of the chunks from ids_from on, answers from them, and adds their ids to the hash
// in the same MULTI that moves ids_from to nchunks. A new dataset starts at ids_from 0, one
// written before the field existed has every id in the hash.
//
// Writes from one process take turns on a dataset (commit_turn), so ingest writers never
// abort one another's WATCH. An ingest block's whole chunks are staged before the turn, so
// with several writers one writer's bytes cross the socket while another commits; and the
// ids this process wrote into a dataset it found empty are remembered (KnownIds), so its
// next blocks need no HMGET of their ids while no one else has changed the dataset.
//
// Consistency: every write is WATCH manifest + MULTI/EXEC that also bumps gen and, with a
// ttl, refreshes the TTL of every key of the dataset. Reads take a snapshot (a Lua script,
// atomic) and read rows in a MULTI that re-reads gen: a changed gen means a concurrent
// write, and the read is retried. Batch reads by position (read_rows, read_positions: the
// data loader's) need no snapshot: the manifest's rows and next_index say whether the
// dataset is dense (a position is then an index), else the live counts map positions to
// chunks; each round of the read is a MULTI re-reading gen (DatasetRows::read_fast), so a
// batch costs O(rows read), not O(chunks in the dataset). Keys set in one MULTI can still expire at different
// moments, so the sentinels make a vanished key visible: a snapshot or read that finds a
// chunk's records, the ids hash or a needed blob missing reports the whole dataset as "expired or
// not found" (NotFoundError), never a partial result.
//
// Queries are an exact scan (Redis has no vector index here): chunks are read 16 per
// round trip and scored with backends/common/blockscan.hpp. Filters are evaluated
// client-side with Filter::matches, since plain Redis has no query language for them.
//
// Upsert rule (same as the local store): an existing id is replaced whole; with explicit
// indices the row takes the given index (rewriting it is idempotent, which --resume relies
// on), with assigned indices it keeps its old one; an index held by another id is a
// ConflictError.
//
// Where the rest is, in this folder: redisdatasets (the catalog's records: create, list,
// drop), redissnapshot (snapshot, head, the WATCH of a mutation), rediswrites (upsert),
// redisupdates, redisdeletes, redisids (the lazy ids index), redisreads (rows by index,
// chunk scans), redisbatchreads (batches by position), redisquery, redislayout (live counts,
// layout 2 -> 3), rediscodec (records), rediscommits (commit turns, known ids, staged
// chunks), redischeckpoints, redisprogress, redisconnection (the socket), and the cache tier
// (rediscache, cachedbackend).
#include "backends/redis/redisbackend.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <unordered_map>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#include "backends/common/catalog.hpp"
#include "backends/common/contention.hpp"
#include "backends/common/rowcheck.hpp"
#include "backends/redis/redischeckpoints.hpp"
#include "backends/redis/redisdatasets.hpp"
#include "backends/redis/redisprogress.hpp"
#include "backends/redis/redisquery.hpp"
#include "backends/redis/redisrows.hpp"
#include "backends/redis/redisstore.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"

namespace vstash::backends::redis {

std::string key_escape(std::string_view name) {
  std::string out;
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == '%' || c == '{' || c == '}' || c == ':') {
      out += fmt::format("%{:02X}", c);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

void append_expire(Connection& conn, const StoreConfig& cfg, const std::string& key) {
  if (cfg.ttl > 0) {
    const std::string ttl = std::to_string(cfg.ttl);
    conn.append({"EXPIRE", key, ttl});
  }
}

namespace {

// Reads retried when a write committed under them.
constexpr int k_attempts = 10;

class RedisBackend final : public Backend {
 public:
  RedisBackend(ConnectOptions options, StoreConfig cfg, std::vector<std::string> secrets)
      : m_conn(std::move(options), std::move(secrets)),
        m_cfg(std::move(cfg)),
        m_rows(m_conn, m_cfg),
        m_records(m_conn, m_cfg, m_rows),
        m_checkpoints(m_conn, m_cfg, m_mutex),
        m_progress(m_conn, m_cfg, m_mutex) {}

  CheckpointStore& checkpoints() override { return m_checkpoints; }
  ProgressStore& progress() override { return m_progress; }

  std::string kind() const override { return "redis"; }

  void create_dataset(const DatasetSpec& spec) override {
    std::lock_guard lock(m_mutex);
    check_spec(spec);
    struct Release {
      RedisDatasetRecords& records;
      ~Release() { records.release(); }
    } release{m_records};
    catalog::Catalog(m_records).create(spec);
  }

  std::optional<DatasetInfo> dataset_info(const std::string& dataset) override {
    std::lock_guard lock(m_mutex);
    const DatasetKeys k(m_cfg, dataset);
    m_rows.append_snapshot(k);
    auto snap = m_rows.parse_snapshot(dataset, *m_conn.flush().front());
    if (!snap || !snap->intact) {
      commit_turn(m_conn.location(), k.manifest()).forget_whole();
      return std::nullopt;
    }
    return info_of(*snap);
  }

  std::vector<DatasetInfo> list_datasets() override {
    std::lock_guard lock(m_mutex);
    return list_locked();
  }

  bool drop_dataset(const std::string& dataset) override {
    std::lock_guard lock(m_mutex);
    return m_records.remove(dataset);
  }

  // Three: commits take turns, but while one writer commits the others' staged chunks are
  // crossing the socket (measured at 100k x 768: 2 writers 1.5x, 3 writers 1.67x redis-py;
  // 4 no better than 3).
  int ingest_writers() const override { return 3; }

  void write_rows(const std::string& dataset, const RowBatch& batch) override {
    std::lock_guard lock(m_mutex);
    for (const auto idx : batch.indices) {
      if (idx < 0) {
        throw UsageError(fmt::format("dataset \"{}\": negative index {}", dataset, idx));
      }
    }
    mutate(dataset, [&] { return m_rows.write(dataset, batch); });
  }

  RowBatch read_rows(const std::string& dataset, int64_t offset, int64_t count) override {
    std::lock_guard lock(m_mutex);
    if (offset < 0 || count < 0) {
      throw UsageError(fmt::format("dataset \"{}\": negative offset or count ({}, {})", dataset, offset, count));
    }
    return read_by_position(dataset, [&](int64_t rows) {
      const int64_t end = std::min(rows, offset + std::min(count, rows));
      std::vector<int64_t> positions;
      for (int64_t p = offset; p < end; ++p) {
        positions.push_back(p);
      }
      return positions;
    });
  }

  // positions_of for read_by_position: the positions, each checked against the live rows.
  static auto checked_positions(const std::string& dataset, const std::vector<int64_t>& positions) {
    return [&dataset, &positions](int64_t rows) {
      for (const auto p : positions) {
        if (p < 0 || p >= rows) {
          throw UsageError(fmt::format("dataset \"{}\": position {} is out of range ({} rows)", dataset, p, rows));
        }
      }
      return positions;
    };
  }

  RowBatch read_positions(const std::string& dataset, const std::vector<int64_t>& positions) override {
    std::lock_guard lock(m_mutex);
    return read_by_position(dataset, checked_positions(dataset, positions));
  }

  // A streamed batch: the records (ids, metadata) are not read, a third fewer commands.
  RowBatch read_samples(const std::string& dataset, const std::vector<int64_t>& positions) override {
    std::lock_guard lock(m_mutex);
    return read_by_position(dataset, checked_positions(dataset, positions), false);
  }

  RowBatch fetch(const std::string& dataset, const std::vector<std::string>& ids) override {
    std::lock_guard lock(m_mutex);
    bool indexed = false;
    return retry_read(dataset, [&](const Snapshot& snap) -> std::optional<RowBatch> {
      if (snap.ids_from < snap.nchunks && !indexed) {
        // The first lookup after an ingest adds its ids to the hash once, rather than every
        // fetch reading the records of the chunks past ids_from. Best effort: if a
        // concurrent write wins, the lookup reads those records instead.
        indexed = true;
        m_rows.index_ids(dataset);
        return std::nullopt;  // read again, with the new snapshot
      }
      const auto found = m_rows.lookup_ids(snap, ids);
      std::vector<int64_t> indices;
      for (const auto& f : found) {
        if (f) {
          indices.push_back(*f);
        }
      }
      return m_rows.load(snap, indices, true);
    });
  }

  void update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                  const std::optional<json>& metadata) override {
    std::lock_guard lock(m_mutex);
    mutate(dataset, [&] { return m_rows.update(dataset, id, sample, metadata); });
  }

  int64_t delete_ids(const std::string& dataset, const std::vector<std::string>& ids) override {
    std::lock_guard lock(m_mutex);
    return *mutate(dataset, [&] {
      return m_rows.remove(
          dataset, [&](const Snapshot& snap, IdsCatchUp& catch_up) { return m_rows.lookup_ids(snap, ids, &catch_up); });
    });
  }

  int64_t delete_where(const std::string& dataset, const Filter& filter) override {
    std::lock_guard lock(m_mutex);
    return *mutate(dataset, [&] {
      return m_rows.remove(dataset, [&](const Snapshot& snap, IdsCatchUp&) {
        std::vector<std::optional<int64_t>> out;
        for (const auto i : m_rows.matching(snap, filter)) {
          out.emplace_back(i);
        }
        return out;
      });
    });
  }

  int64_t count(const std::string& dataset, const Filter* filter) override {
    std::lock_guard lock(m_mutex);
    return retry_read(dataset, [&](const Snapshot& snap) -> std::optional<int64_t> {
      if (filter == nullptr || filter->empty()) {
        return snap.rows;
      }
      auto n = static_cast<int64_t>(m_rows.matching(snap, *filter).size());
      return m_rows.gen_unchanged(snap) ? std::optional<int64_t>(n) : std::nullopt;
    });
  }

  std::vector<QueryHit> query(const std::string& dataset, const std::vector<float>& vector,
                              const QueryOptions& options) override {
    std::lock_guard lock(m_mutex);
    return retry_read(dataset, [&](const Snapshot& snap) -> std::optional<std::vector<QueryHit>> {
      if (static_cast<int64_t>(vector.size()) != snap.spec.dimension()) {
        throw UsageError(fmt::format("dataset \"{}\": query vector has {} values, the dataset has dimension {}",
                                     dataset, vector.size(), snap.spec.dimension()));
      }
      auto hits = scan_query(m_rows, snap, vector, 1, options);
      return hits ? std::optional<std::vector<QueryHit>>(std::move(hits->at(0))) : std::nullopt;
    });
  }
  std::vector<std::vector<QueryHit>> query_many(const std::string& dataset, const std::vector<float>& queries, size_t n,
                                                const QueryOptions& options) override {
    if (n == 0) {
      return {};
    }
    std::lock_guard lock(m_mutex);
    return retry_read(dataset, [&](const Snapshot& snap) -> std::optional<std::vector<std::vector<QueryHit>>> {
      if (queries.size() != n * static_cast<size_t>(snap.spec.dimension())) {
        throw UsageError(fmt::format("dataset \"{}\": {} query values are not {} queries of dimension {}", dataset,
                                     queries.size(), n, snap.spec.dimension()));
      }
      return scan_query(m_rows, snap, queries, n, options);
    });
  }

  Stats stats() override {
    std::lock_guard lock(m_mutex);
    Stats s;
    s.extra["round_trips"] = m_conn.round_trips();  // before this call's own
    s.backend = "redis";
    s.location = m_conn.location();
    s.datasets = list_locked();
    s.checkpoints_per_model = checkpoint_counts(m_conn, m_cfg);  // under m_mutex, as RedisCheckpoints
    const std::string info =
        as_string(*m_conn.command({"INFO", "memory"})) + as_string(*m_conn.command({"INFO", "server"}));
    s.store_bytes = info_field_int(info, "used_memory");
    s.extra["redis_version"] = info_field(info, "redis_version");
    s.extra["prefix"] = m_cfg.prefix;
    s.extra["ttl"] = m_cfg.ttl;
    s.extra["chunk_rows"] = k_chunk_rows;
    s.extra["query"] = "exact scan";
    return s;
  }

 private:
  ConflictError too_busy(const std::string& dataset, int attempts = k_attempts) const {
    return ConflictError(
        fmt::format("redis {}: dataset \"{}\": gave up after {} attempts: concurrent writers keep "
                    "changing it",
                    m_conn.location(), dataset, attempts));
  }

  // Runs one mutation until its EXEC commits (try_once answers false or nullopt when another
  // writer fired its WATCH), backing off in between; all mutations share one limit with the
  // catalog (k_contention_attempts, backends/common/contention.hpp).
  template <class F>
  std::invoke_result_t<F&> mutate(const std::string& dataset, F&& try_once) {
    for (int attempt = 0; attempt < k_contention_attempts; ++attempt) {
      try {
        if (auto done = try_once()) {
          return done;
        }
      } catch (const StaleRead&) {  // a sharded chunk read after a commit unlinked it: the WATCH fired too
      }
      contention_pause(attempt);
    }
    throw too_busy(dataset, k_contention_attempts);
  }

  // Runs read(snapshot) until it sees no concurrent write (read returns nullopt when gen moved).
  template <class F>
  typename std::invoke_result_t<F&, const Snapshot&>::value_type retry_read(const std::string& dataset, F&& read) {
    bool reconnected = false;
    for (int attempt = 0; attempt < k_attempts; ++attempt) {
      try {
        const Snapshot snap = m_rows.require(dataset);
        if (auto result = read(snap)) {
          return std::move(*result);
        }
      } catch (const StaleRead&) {
        continue;  // a commit since the snapshot unlinked a chunk version it names
      } catch (const RetryableError&) {
        // A lost connection (a server restart, a failover): a read changes nothing, so once
        // the server answers again it runs once more.
        if (reconnected) {
          throw;
        }
        reconnected = true;
        m_conn.wait_for_server();
      }
    }
    throw too_busy(dataset);
  }

  // The rows at positions_of(live rows): in layout 3 from the manifest alone (O(1)) and
  // read_fast, O(rows read); a layout 2 dataset through a whole-dataset snapshot, as it is
  // stored. Retried like retry_read when a write commits in between.
  // records=false (read_samples): data and labels only, ids empty.
  template <class F>
  RowBatch read_by_position(const std::string& dataset, F&& positions_of, bool records = true) {
    bool reconnected = false;
    bool fresh = false;  // the head was read by this call (else the one the last read saw)
    for (int attempt = 0; attempt < k_attempts; ++attempt) {
      try {
        auto head = fresh ? std::nullopt : m_rows.cached_head(dataset);
        fresh = !head;
        if (!head) {
          head = m_rows.head(dataset);
        }
        if (!head) {
          m_rows.throw_not_found(dataset);
        }
        if (head->layout != k_layout) {
          const Snapshot snap = m_rows.require(dataset);
          if (auto result = m_rows.read_positions(snap, positions_of(snap.rows))) {
            return std::move(*result);
          }
          continue;
        }
        std::vector<int64_t> positions;
        try {
          positions = positions_of(head->rows);
        } catch (const UsageError&) {
          if (!fresh) {  // out of range of a stale head, perhaps: ask the manifest
            fresh = true;
            continue;
          }
          throw;
        }
        if (auto result = m_rows.read_fast(*head, positions, records)) {
          return std::move(*result);
        }
        fresh = true;  // a write moved gen: read the manifest again
      } catch (const StaleRead&) {
        m_rows.forget_reads();
        fresh = true;
      } catch (const RetryableError&) {
        m_rows.forget_reads();
        if (reconnected) {
          throw;
        }
        reconnected = true;
        m_conn.wait_for_server();
      }
    }
    throw too_busy(dataset);
  }

  DatasetInfo info_of(const Snapshot& snap) const {
    DatasetInfo info;
    info.spec = snap.spec;
    info.rows = snap.rows;
    info.next_index = snap.next_index;
    info.bytes = snap.rows * static_cast<int64_t>(snap.row_bytes + snap.label_bytes);
    info.extra = {
        {"chunks", snap.nchunks}, {"chunk_rows", k_chunk_rows}, {"ttl", m_cfg.ttl}, {"shards", snap.shards()}};
    return info;
  }

  std::vector<DatasetInfo> list_locked() {
    std::vector<DatasetInfo> out;
    for (const auto& snap : m_records.intact_snapshots()) {
      out.push_back(info_of(snap));
    }
    return out;
  }

  static std::string info_field(const std::string& info, const std::string& key) {
    const auto at = info.find(key + ":");
    if (at == std::string::npos) {
      return "";
    }
    const auto begin = at + key.size() + 1;
    return info.substr(begin, info.find_first_of("\r\n", begin) - begin);
  }
  static int64_t info_field_int(const std::string& info, const std::string& key) {
    const auto v = info_field(info, key);
    return v.empty() ? 0 : std::stoll(v);
  }

  std::mutex m_mutex;  // one connection, so one command sequence at a time
  Connection m_conn;
  StoreConfig m_cfg;
  DatasetRows m_rows;
  RedisDatasetRecords m_records;
  RedisCheckpoints m_checkpoints;
  RedisProgress m_progress;
};

}  // namespace

std::unique_ptr<Backend> create(const Profile& profile) {
  StoreConfig cfg;
  cfg.prefix = profile.get_string("prefix", "vstash:");
  cfg.ttl = profile.get_int("ttl", 0);
  if (cfg.ttl < 0) {
    throw UsageError(fmt::format("profile \"{}\" ({}): ttl must be 0 (no expiry) or a number of seconds",
                                 profile.name(), profile.source()));
  }
  cfg.shards = profile.get_int("shards_per_dataset", 0);
  if (profile.has("shards_per_dataset") && (cfg.shards < 1 || cfg.shards > k_max_shards)) {
    throw UsageError(fmt::format("profile \"{}\" ({}): shards_per_dataset must be an integer from 1 to {}",
                                 profile.name(), profile.source(), k_max_shards));
  }
  return std::make_unique<RedisBackend>(ConnectOptions::from_profile(profile), cfg, profile.secrets());
}

}  // namespace vstash::backends::redis
