// SPDX-License-Identifier: MIT
// Internal to the redis backend: the chunked row layout (documented in redisbackend.cpp)
// and the pipelined reads and MULTI/EXEC writes over it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backends/backend.hpp"
#include "backends/redis/redisconnection.hpp"
#include "backends/redis/redisstore.hpp"

namespace vstash::backends::redis {

constexpr int64_t k_chunk_rows = 256;
// The manifest's "layout" field: datasets stored otherwise are refused, not misread.
// 3: chunk records in a seekable value (a slot offset table, see encode_chunk_records), the
//    manifest's live row count "rows" and the live key (rows per chunk), so that a batch
//    read costs O(rows read) (read_fast). Written by this version.
// 2: records in a sequential value, no counts. Read as it is (through a whole-dataset
//    snapshot); the first write migrates it to 3 (migrate_layout).
// 1 (no field) kept records in a hash per chunk: refused.
constexpr std::string_view k_layout = "3";
constexpr std::string_view k_layout_v2 = "2";
// Fields per HSET/HMGET of many ids: few commands, none of them huge.
constexpr size_t k_fields_per_command = 1024;
inline uint32_t load_u32(const char* p) {
  uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}
constexpr int64_t chunk_of(int64_t index) { return index / k_chunk_rows; }
constexpr int64_t slot_of(int64_t index) { return index % k_chunk_rows; }

// A dataset's keys. Its manifest, ids hash, live counts and version map share the hash tag
// {NAME}; its chunks too when it has one shard (S = 1, and every dataset created before
// shards existed). With S > 1 chunk N lives in shard N mod S, under the hash tag {NAME/s},
// and its keys are copy-on-write versions: ...:rows:N:vV, V from the version map (see
// "Shards" in redisbackend.cpp).
struct DatasetKeys {
  DatasetKeys(const StoreConfig& cfg, const std::string& dataset);
  std::string name;
  std::string base;                // P ds:{NAME}:
  int64_t shards = 1;              // the manifest's "shards" (set from a snapshot or head)
  std::vector<uint32_t> versions;  // S > 1: each chunk's version, from the version map
  std::string manifest() const { return base + "manifest"; }
  std::string ids(const std::string& inc) const { return base + inc + ":ids"; }
  std::string rows(const std::string& inc, int64_t n) const { return key("rows", inc, n); }
  std::string chunk(const std::string& inc, int64_t n) const { return key("chunk", inc, n); }
  std::string labels(const std::string& inc, int64_t n) const { return key("labels", inc, n); }
  // Layout 3: the live row count of chunk N as u16 LE at byte 2N.
  std::string live(const std::string& inc) const { return base + inc + ":live"; }
  // S > 1: the version map (chunk N's version as u32 LE at byte 4N) and the counter that
  // gives each mutation its version.
  std::string vers(const std::string& inc) const { return base + inc + ":vers"; }
  std::string vseq(const std::string& inc) const { return base + inc + ":vseq"; }
  // S > 1: hash, version -> the chunk bound of a mutation's versions not yet committed or
  // unlinked (a writer killed in between leaves its entry, and drop unlinks those keys).
  std::string pending(const std::string& inc) const { return base + inc + ":pending"; }
  // kind ("rows", "chunk", "labels") of chunk N at its current version (S = 1: unversioned).
  std::string key(std::string_view kind, const std::string& inc, int64_t n) const;
  // kind of chunk N at version v (S > 1).
  std::string key_at(std::string_view kind, const std::string& inc, int64_t n, uint32_t v) const;
  // key(kind, inc, n) built into out (its capacity reused: a batch read names hundreds).
  void key_into(std::string& out, std::string_view kind, const std::string& inc, int64_t n) const;

 private:
  std::string m_tag;  // P ds:{NAME
};

// The version map's bytes: u32 LE per chunk. decode_versions reads nchunks entries (missing
// ones are 0, a version never written) and encode_versions one run starting at its first chunk.
std::vector<uint32_t> decode_versions(std::string_view map, int64_t nchunks);
std::string encode_versions(const std::vector<uint32_t>& run);
constexpr int64_t k_max_shards = 256;

// A read of a sharded dataset met a chunk version that a later commit has unlinked: the read
// is retried with a new head (thrown by DatasetRows::stale_or_expired, caught by the retry loops).
struct StaleRead {};

// What the snapshot script saw, atomically: the manifest and every chunk's live count.
struct Snapshot {
  DatasetKeys keys;
  DatasetSpec spec;
  std::string inc;
  int64_t next_index = 0;
  int64_t nchunks = 0;
  int64_t gen = 0;
  int64_t rows = 0;
  std::vector<int64_t> live;  // live rows per chunk
  bool intact = true;         // false when a chunk's records or the ids hash have vanished
  size_t row_bytes = 0;
  size_t label_bytes = 0;
  // The manifest's ids_from: the ids of every live row in a chunk below it are in the ids
  // hash; rows in chunks from it on may not be (see "Lazy ids index" in redisbackend.cpp).
  // A dataset written before the field existed has every id in the hash.
  int64_t ids_from = std::numeric_limits<int64_t>::max();
  // A light snapshot (append_snapshot(keys, true)) checked only the manifest, the ids hash
  // and the last chunk's records, in O(1): live is empty and rows is -1 (unknown).
  bool light = false;
  std::string layout;  // k_layout or k_layout_v2
  // S > 1, a light snapshot that was asked for one (VersionBound): a mutation version the
  // snapshot script allocated and recorded as pending, as ChunkVersions::allocate does (0: none).
  uint32_t version = 0;
  int64_t shards() const { return keys.shards; }
};

// A write that takes its version with its snapshot (one round trip less per block): its rows
// end at most at next_index + add, or at hi if that is larger (explicit indices).
struct VersionBound {
  int64_t add = 0;
  int64_t hi = 0;
  // The chunk bound of the pending entry, for the snapshot's next_index.
  int64_t chunks(int64_t next_index) const {
    return (std::max(next_index + add, hi) + k_chunk_rows - 1) / k_chunk_rows;
  }
};

// What a lookup found by reading the records of chunks past ids_from: their ids, for the
// mutation that asked to add to the ids hash in its MULTI, so the next lookup need not read
// them again (ids_from then moves to upto).
struct IdsCatchUp {
  std::vector<std::pair<std::string, int64_t>> entries;  // id -> index
  int64_t upto = -1;                                     // -1: nothing read
};

using ChunkRecords = std::map<int64_t, std::string>;  // slot -> record

struct ChunkData {
  int64_t n = 0;
  ChunkRecords records;  // slot -> record (empty strings when only slots were read)
  std::string samples;
  std::string labels;  // the label blob, when read_labels filled it
};

// The ids this process wrote into a dataset since it found it empty, as of the manifest's
// (inc, gen): while the manifest still shows that (inc, gen), no one else has changed the
// dataset, so an id not in here is not in it, and a write needs no server lookup for it
// (an HMGET of every id was a fresh ingest's largest server cost after the bytes). Only
// 64-bit hashes are kept, in an open-addressing table: an id whose hash is present (written
// before, deleted since, or a rare collision) is looked up on the server as before, so a
// false "maybe" costs a lookup and never a wrong answer.
class KnownIds {
 public:
  KnownIds(std::string incarnation, int64_t generation) : inc(std::move(incarnation)), gen(generation) {}
  bool may_hold(std::string_view id) const;
  void add(std::string_view id);
  size_t size() const { return m_size; }

  std::string inc;
  int64_t gen;

 private:
  static uint64_t hash_of(std::string_view id);
  std::vector<uint64_t> m_slots;  // 0: empty; a power of two, at most half full
  size_t m_size = 0;
};
// Beyond this many ids the table (16 bytes per id at most) is dropped and writes look their
// ids up on the server: memory stays bounded however large the dataset grows.
constexpr size_t k_known_ids_max = size_t{1} << 22;

// Mutations of one dataset from one process take turns from WATCH to EXEC: two WATCHes
// open at once (ingest's writers, its watermark) would abort each other's EXEC and retry.
// The turn also keeps the dataset's KnownIds; touch it only while holding the mutex.
struct CommitTurn {
  std::mutex mutex;
  std::optional<KnownIds> known;
  // The KnownIds if they are as of the manifest's (inc, gen), else nullptr (and they are dropped).
  KnownIds* known_at(const std::string& inc, int64_t gen);
  // After a committed mutation that moved the manifest from `gen` to gen + 1 and wrote no
  // new id (a metadata change, an update, a delete).
  void ids_unchanged(const std::string& inc, int64_t gen);

  // Where this process last saw the dataset whole (a full snapshot, or an empty dataset),
  // advanced by each of its own commits. While the manifest still shows it, every change
  // since came from here, each refreshing every key's ttl in one EXEC, so a light snapshot
  // (O(1), instead of a check of every chunk) is enough for the next write: a full one per
  // block made a long ingest quadratic.
  // Any read or write that finds a key missing forgets it (forget_whole, without the turn:
  // an eviction or a DEL by hand is what the light snapshot cannot see).
  bool whole_at(const std::string& inc, int64_t gen) const { return whole_gen.load() == gen && whole_inc == inc; }
  void saw_whole(const std::string& inc, int64_t gen) {
    whole_inc = inc;
    whole_gen.store(gen);
  }
  // After a committed mutation that moved the manifest from `gen` to gen + 1.
  void advanced(const std::string& inc, int64_t gen) {
    int64_t expected = gen;
    if (whole_inc == inc) {
      whole_gen.compare_exchange_strong(expected, gen + 1);
    }
  }
  void forget_whole() { whole_gen.store(-1); }
  // The dataset's shard count as last seen (0: not yet): with S > 1 a writer stages nothing.
  std::atomic<int64_t> shards{0};
  std::string whole_inc;
  std::atomic<int64_t> whole_gen{-1};
};
CommitTurn& commit_turn(const std::string& location, const std::string& manifest);

// Clears a WATCH left behind when a mutation stops before its MULTI.
class Unwatch {
 public:
  explicit Unwatch(Connection& conn) : m_conn(conn) {}
  ~Unwatch() {
    if (m_armed && m_conn.connected()) {
      try {
        m_conn.command({"UNWATCH"});
      } catch (...) {  // NOLINT(bugprone-empty-catch): the connection is reset on its next use
      }
    }
  }
  Unwatch(const Unwatch&) = delete;
  Unwatch& operator=(const Unwatch&) = delete;
  void disarm() { m_armed = false; }

 private:
  Connection& m_conn;
  bool m_armed = true;
};

// False when a WATCH fired and EXEC ran nothing.
inline bool exec_ok(const std::vector<Reply>& replies) { return !is_nil(*replies.back()); }

// The samples of the whole chunks in a batch of consecutive indices, sent before the commit
// turn under keys of their own (P ds:{NAME}:stage:TOKEN:N) and RENAMEd into place inside the
// commit, which is O(1) on the server. Their replies are read with the first flush in the
// turn (no round trip of their own). With two writers, one writer's bytes cross the socket
// while the other commits, instead of the server idling while each block is prepared.
class StagedChunks {
 public:
  // enabled false (a sharded dataset, whose commit cannot rename into other slots): nothing staged.
  StagedChunks(Connection& conn, const DatasetKeys& keys, const RowBatch& batch, bool enabled = true);
  // Unlinks the staged keys unless renamed(): a failed or aborted commit leaves nothing.
  ~StagedChunks();
  StagedChunks(const StagedChunks&) = delete;
  StagedChunks& operator=(const StagedChunks&) = delete;
  // In the turn, after the manifest's WATCH: queues WATCH and EXISTS of the staged keys (if
  // any), so that an eviction or expiry before EXEC aborts it instead of a RENAME failing
  // inside it. check_watched takes the EXISTS reply: if one is gone already, find()
  // answers nullptr for every chunk and the commit sends the bytes itself.
  bool staged() const { return !m_keys.empty(); }
  void append_watch();
  void check_watched(const redisReply& exists);
  // The staged key holding chunk N's samples, or nullptr.
  const std::string* find(int64_t chunk) const;
  void renamed() { m_keys.clear(); }
  // The commit does not rename them (a sharded dataset's chunks live in other slots).
  void unusable() { m_unusable = true; }

 private:
  Connection& m_conn;
  std::map<int64_t, std::string> m_keys;  // chunk -> staged key
  bool m_unusable = false;
};
// A staged key's own expiry, for a writer that dies before its commit; the commit renames
// it long before.
constexpr int64_t k_stage_ttl_ms = 3600 * 1000;

// The manifest's "spec" field: the catalog's JSON form (backends/common/catalog.hpp) without
// the label keys when there are no labels, as this store has always written it (the
// snapshot script reads a missing label_dtype as "no labels").
std::string stored_spec_text(const DatasetSpec& spec);
// A row's record in its chunk's records: u32 id length, id bytes, metadata as MessagePack
// (nothing for null).
std::string encode_record(std::string_view id, const json& metadata);
std::pair<std::string, json> decode_record(std::string_view record);
// A chunk's records, one string value (rows:N), layout 3: 'T', the live count (u16), then
// k_chunk_rows u32 end offsets (slot s's record is bytes [end[s-1], end[s]) of the data
// that follows the table, end[-1] = 0; empty: the slot holds no row), then the records in
// slot order. A reader finds one slot's record with two GETRANGEs, without the value.
// (Layout 2's 'R' value, decoded too: the live count, then per live slot in slot order:
// slot (u8), record length (u32), record.) One value instead of a hash field per row:
// writing a chunk's records is one SET, which costs the server a fraction of 256 hash
// fields; changing one row rewrites the value, which deletes and updates read anyway under
// their WATCH.
constexpr size_t k_records_table = 3;                                  // offset of end[0]
constexpr size_t k_records_data = k_records_table + 4 * k_chunk_rows;  // offset of the records
std::string encode_chunk_records(const std::vector<std::pair<int64_t, std::string_view>>& records);
std::string encode_chunk_records(const ChunkRecords& records);
ChunkRecords decode_chunk_records(std::string_view blob);

// A batch of n rows of the spec: data (and labels, when the spec has them) allocated, ids
// and metadata empty.
RowBatch shaped_batch(const DatasetSpec& spec, size_t n);

// What read_fast learned of the dataset it last read, valid at head's (inc, gen) only.
struct ReadCache {
  Snapshot head;
  std::unordered_map<int64_t, std::string> tables;  // chunk -> its slots' end offsets
  std::vector<int64_t> cumulative;                  // live rows before each chunk
  bool have_live = false;
};
constexpr size_t k_cached_tables_max = 16384;  // 16 MiB of tables, 4M rows

// The copy-on-write chunk versions of one mutation of a sharded dataset (inert when S = 1):
// the chunks it changes are written under a new version (one INCR of vseq), before its
// MULTI, with COPY of the current version where only part of a chunk is rewritten; its
// MULTI then points the version map at them and unlinks the superseded ones. Unless
// committed(), the destructor unlinks the new versions (an aborted EXEC leaves nothing).
class ChunkVersions {
 public:
  ChunkVersions(Connection& conn, const StoreConfig& cfg, const Snapshot& snap);
  ~ChunkVersions();
  ChunkVersions(const ChunkVersions&) = delete;
  ChunkVersions& operator=(const ChunkVersions&) = delete;
  bool active() const { return m_snap.shards() > 1; }
  // One round trip: this mutation's version, recorded as pending for chunks below end;
  // none when adopt() gave one that covers end.
  void allocate(int64_t end);
  // The version the snapshot script allocated (Snapshot::version), pending for chunks below end.
  void adopt(uint32_t version, int64_t end) {
    m_version = version;
    m_end = end;
  }
  // The key of kind in chunk c's new version (S = 1: the chunk's only key); c is rewritten.
  std::string key(std::string_view kind, int64_t c);
  // Before a SET (whole) or SETRANGE of kind in chunk c's new version: for a SETRANGE, the
  // current version's bytes, copied once.
  void prepare(std::string_view kind, int64_t c, bool whole);
  // Copies what the rewritten chunks keep, gives the new keys the ttl and flushes: the new
  // versions exist (errors leave as the mapped vstash error).
  void write_out();
  // Inside the MULTI: the version map's entries and UNLINK of the superseded versions.
  void append_commit();
  void committed() { m_committed = true; }

 private:
  static unsigned bit_of(std::string_view kind);
  Connection& m_conn;
  const StoreConfig& m_cfg;
  const Snapshot& m_snap;
  uint32_t m_version = 0;
  int64_t m_end = 0;  // the pending entry's chunk bound
  bool m_committed = false;
  std::map<int64_t, unsigned> m_parts;  // chunk -> kinds written or copied (bit_of)
};

// Tests only (tests/unit/test_backends_redis_shards.cpp): called once a sharded mutation's
// new versions exist, before its MULTI, to read the dataset between the two steps.
inline std::function<void()>& before_commit_hook() {
  static std::function<void()> hook;
  return hook;
}

class DatasetRows {
 public:
  DatasetRows(Connection& conn, const StoreConfig& cfg) : m_conn(conn), m_cfg(cfg) {}

  // bound (light only): a sharded dataset's script also allocates the write's version.
  void append_snapshot(const DatasetKeys& keys, bool light = false, const VersionBound* bound = nullptr);
  // With the turn held and the manifest WATCHed: replaces a light snapshot the turn cannot
  // vouch for (CommitTurn::whole_at) by a full one, and records a full or empty intact one
  // as seen whole.
  void settle_snapshot(CommitTurn& turn, const DatasetKeys& keys, std::optional<Snapshot>& snap);
  // nullopt when the manifest does not exist.
  std::optional<Snapshot> parse_snapshot(const std::string& dataset, const redisReply& reply) const;
  // An intact snapshot, or NotFoundError: "does not exist" without a manifest, "expired or
  // not found" when some of its keys have vanished.
  Snapshot require(const std::string& dataset);
  void require_intact(const std::string& dataset, const std::optional<Snapshot>& snap) const;
  [[noreturn]] void throw_expired(const std::string& dataset) const;
  [[noreturn]] void throw_not_found(const std::string& dataset) const;
  // A chunk key the read needed was missing: S > 1, a commit since snap unlinked it
  // (StaleRead, when gen moved), else throw_expired. S = 1: throw_expired, no round trip.
  [[noreturn]] void stale_or_expired(const Snapshot& snap) const;
  // "redis HOST:PORT", the context of every message about a dataset.
  std::string location() const { return "redis " + m_conn.location(); }
  // Queues EXPIRE for every key of the dataset (chunks below nchunks).
  void append_expire_all(const DatasetKeys& keys, const Snapshot& snap, int64_t nchunks = -1);

  // Mutations return false (or nullopt) when a concurrent write fired the WATCH: retry.
  bool write(const std::string& dataset, const RowBatch& batch);
  bool update(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
              const std::optional<json>& metadata);
  using Selector = std::function<std::vector<std::optional<int64_t>>(const Snapshot&, IdsCatchUp&)>;
  std::optional<int64_t> remove(const std::string& dataset, const Selector& select);
  // Adds the ids of the chunks past ids_from to the ids hash (the first lookup after an
  // ingest); false when a concurrent write fired the WATCH.
  bool index_ids(const std::string& dataset);

  // Where each id lives (nullopt: absent): the ids hash, plus the records of the chunks past
  // snap.ids_from. A mutation passes catch_up to add what was read to the hash in its MULTI
  // (append_ids_catch_up). Reads: nullopt when gen moved during the read (retry with a new snapshot).
  std::vector<std::optional<int64_t>> lookup_ids(const Snapshot& snap, const std::vector<std::string>& ids,
                                                 IdsCatchUp* catch_up = nullptr);
  // Inside a MULTI, before the mutation's own changes to the ids hash.
  void append_ids_catch_up(const DatasetKeys& keys, const Snapshot& snap, const IdsCatchUp& catch_up);
  // HSETs of id -> index fields, k_fields_per_command per command.
  void append_index_fields(const DatasetKeys& keys, const Snapshot& snap,
                           const std::vector<std::pair<std::string_view, int64_t>>& fields);
  std::optional<RowBatch> read_positions(const Snapshot& snap, const std::vector<int64_t>& positions);
  // The manifest alone, in O(1) (HMGET): spec, inc, gen, next_index, nchunks, layout and,
  // in layout 3, rows. nullopt when the dataset does not exist.
  std::optional<Snapshot> head(const std::string& dataset);
  // Layout 3: the rows at these positions (each below head.rows) in one round trip of
  // O(rows read) payload, a MULTI that re-reads gen: nullopt when a write committed since
  // head (retry with a new head). The chunks' offset tables (and, with deleted rows, the live
  // counts) are read first when not yet cached at this gen, 1 KiB per chunk. A needed key
  // gone is "expired or not found". records=false (read_samples) skips the rows' records:
  // ids are empty strings, metadata null, one GETRANGE fewer per run.
  std::optional<RowBatch> read_fast(const Snapshot& head, const std::vector<int64_t>& positions, bool records = true);
  // The head read_fast last read this dataset at (maybe stale: read_fast then answers
  // nullopt), so that a stream of batches needs no manifest round trip each; and forgetting it.
  std::optional<Snapshot> cached_head(const std::string& dataset) const;
  void forget_reads();
  // Layout 2 -> 3 under the turn and the WATCH of a mutation (its snapshot full): rewrites
  // every chunk's records, writes the counts and bumps gen. False when the WATCH fired.
  bool migrate_layout(const Snapshot& snap);
  // Queues the live counts of these chunks (layout 3), one SETRANGE per run of chunks.
  void append_live(const DatasetKeys& keys, const Snapshot& snap, const std::map<int64_t, int64_t>& counts);
  // The live rows at these indices, in the order given; values=false skips samples/labels.
  std::optional<RowBatch> load(const Snapshot& snap, const std::vector<int64_t>& indices, bool values);
  // Chunks [first, last): their live slots (and records) and, if asked, the sample blob.
  std::vector<ChunkData> read_chunks(const Snapshot& snap, int64_t first, int64_t last, bool records, bool samples);
  // Fills each chunk's label blob (for a filter on $label).
  void read_labels(const Snapshot& snap, std::vector<ChunkData>& chunks);
  // The $label value of a slot of a chunk whose labels were read; null when filter does not use it.
  json label_of(const Snapshot& snap, const ChunkData& chunk, int64_t slot, const Filter& filter) const;
  std::vector<int64_t> matching(const Snapshot& snap, const Filter& filter);
  bool gen_unchanged(const Snapshot& snap);
  void row_as_float(const Snapshot& snap, const std::string& samples, int64_t slot, std::vector<float>& out) const;

 private:
  // The start of every mutation of a dataset: takes its turn (commit_turn), WATCHes its
  // manifest (and the staged keys, in the same round trip) and reads its snapshot,
  // throwing "expired or not found" unless it is intact. Leaving scope before disarm()
  // (called once MULTI is queued) clears the WATCH.
  class Watched {
   public:
    // light: a light snapshot when settle_snapshot trusts it, else a full one (a second
    // round trip). bound: see append_snapshot.
    Watched(DatasetRows& store, const DatasetKeys& keys, StagedChunks* staged = nullptr, bool light = false,
            const VersionBound* bound = nullptr);
    Snapshot& snap() { return *m_snap; }
    CommitTurn& turn() { return m_turn; }
    void disarm() { m_unwatch.disarm(); }

   private:
    CommitTurn& m_turn;
    std::lock_guard<std::mutex> m_lock;
    Unwatch m_unwatch;
    std::optional<Snapshot> m_snap;
  };

  DatasetSpec stored_spec(const std::string& dataset, const redisReply& text) const;
  // A head from the manifest fields HMGET read (and, S > 1, the version map).
  Snapshot head_of(const DatasetKeys& keys, const redisReply& fields, const std::string& vers) const;
  Connection& m_conn;
  const StoreConfig& m_cfg;
  std::optional<ReadCache> m_read_cache;
};

}  // namespace vstash::backends::redis
