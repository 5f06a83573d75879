// SPDX-License-Identifier: MIT
// Internals of the local store shared by its .cpp files: RAII over the SQLite C API, the
// schema, the datasets and rows tables. Not part of the public backend interface.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/backend.hpp"
#include "backends/local/localsegments.hpp"

namespace vstash::backends::local {

using DbPtr = std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;

// How long a connection waits for another writer's lock before RetryableError.
constexpr int k_busy_timeout_ms = 30000;
// The schema version this build reads and writes (meta.layout_version). Layout 1 kept each
// row's sample and label as blobs in `rows`; layout 2 keeps them in segment files
// (localsegments.hpp); layout 3 adds implicit rows (datasets.implicit_rows, table
// row_deletions: localimplicit.cpp). Older layouts are migrated by the first read-write open;
// a read-only open reads a layout 2 store as it is (no implicit rows) and refuses layout 1.
constexpr int64_t k_layout_version = 3;

// Throws the vstash error for a failed SQLite call: busy/locked -> RetryableError, not a
// database -> Error naming the path, anything else -> Error("PATH: what: sqlite message").
[[noreturn]] void throw_sqlite(sqlite3* db, int rc, const std::string& path, std::string_view what);

class Connection;

// A cached prepared statement borrowed for one use; reset (bindings cleared) when it goes out
// of scope so the next user starts clean. Text bound with bind() is copied; bind_static*()
// borrows, so the caller keeps that memory alive until the last step().
class Stmt {
 public:
  Stmt(sqlite3_stmt* stmt, Connection& conn) : m_stmt(stmt), m_conn(&conn) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, const std::string& text);
  Stmt& bind_null(int i);
  Stmt& bind_static_text(int i, std::string_view text);
  Stmt& bind_static_blob(int i, std::span<const std::byte> blob);
  // Steps once: true with a row, false when done. Throws on error.
  bool step();
  // Steps once and returns the raw result code, for callers that handle a constraint.
  int try_step();
  // Steps to completion, ignoring rows.
  void run();
  void reset();

  bool is_null(int col) const { return sqlite3_column_type(m_stmt, col) == SQLITE_NULL; }
  int64_t int_at(int col) const { return sqlite3_column_int64(m_stmt, col); }
  std::string text_at(int col) const;
  std::span<const std::byte> blob_at(int col) const;

 private:
  sqlite3_stmt* m_stmt;
  Connection* m_conn;
};

// How a connection opens the file: to read and write (created when missing), only to read
// (never created), or only to read a file that nothing writes meanwhile (SQLite's
// `immutable`: no -shm or -wal file is needed, for a WAL store in a directory this process
// may not write).
enum class OpenMode { read_write, read_only, immutable };

// One SQLite connection with its statement cache. Used by one thread at a time (the
// backend's mutex or reader pool guarantees that), so it is opened without SQLite's mutex.
class Connection {
 public:
  explicit Connection(const std::string& path, OpenMode mode = OpenMode::read_write);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The statement for sql, prepared once per connection.
  Stmt prepare(const std::string& sql);
  void exec(const std::string& sql);
  const std::string& path() const { return m_path; }
  sqlite3* handle() const { return m_db.get(); }
  // The layout this connection last read (0 before the first dataset lookup): 2 for a
  // read-only connection to a layout 2 store, re-checked in each lookup since a writer may
  // migrate it meanwhile.
  int64_t layout() const { return m_layout; }
  void set_layout(int64_t layout) { m_layout = layout; }
  [[noreturn]] void fail(int rc, std::string_view what) const { throw_sqlite(m_db.get(), rc, m_path, what); }

 private:
  std::string m_path;
  DbPtr m_db;
  std::unordered_map<std::string, StmtPtr> m_cache;
  int64_t m_layout = 0;
};

// BEGIN on construction; rolled back in the destructor unless commit() was called. Writers
// use BEGIN IMMEDIATE so the write lock is taken up front: a deferred transaction that
// upgrades from read to write can fail with SQLITE_BUSY without waiting.
class Transaction {
 public:
  Transaction(Connection& conn, bool write);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  void commit();

 private:
  Connection& m_conn;
  bool m_open = true;
};

// --- schema (localschema.cpp) ------------------------------------------------------------

// Sets the per-connection pragmas. Every connection calls it.
void configure_connection(Connection& conn);
// Checks the layout version and creates the tables of a new store (on the writer only);
// migrates a layout 1 or 2 store to layout 3 (one line on stderr per step). Throws Error for a newer
// layout or a SQLite file that is not a vstash store.
void ensure_schema(Connection& conn);
int64_t read_layout_version(Connection& conn);

// A datasets row.
struct DatasetRecord {
  int64_t id = 0;
  DatasetSpec spec;
  int64_t next_index = 0;
  int64_t row_count = 0;
  int64_t row_bytes = 0;
  int64_t version = 0;  // bumped by every change to the dataset's rows
  std::string created_at;
  int64_t slots = 0;          // committed records in the segment file
  int64_t generation = 1;     // which segment file (bumped by compaction)
  bool in_order = true;       // live rows are slots 0..row_count-1 in index order: position == slot
  int64_t implicit_rows = 0;  // K: rows below index K are implicit unless deleted (localimplicit.cpp)

  bool dense() const { return row_count == next_index; }  // no gaps: position == index
  bool plain() const { return in_order && dense(); }      // position == index == slot
  size_t sample_bytes() const { return static_cast<size_t>(spec.dimension()) * dtype_size(spec.dtype); }
  size_t label_bytes() const {
    return spec.label_dtype ? static_cast<size_t>(shape_product(spec.label_shape)) * dtype_size(*spec.label_dtype) : 0;
  }
  size_t record_bytes() const { return sample_bytes() + label_bytes(); }
  std::string segment(const std::string& store_path) const { return segment_path(store_path, id, generation); }
  DatasetInfo info() const;
};

std::optional<DatasetRecord> find_dataset(Connection& conn, const std::string& name);
// Throws catalog::dataset_not_found (localcatalog.cpp).
DatasetRecord require_dataset(Connection& conn, const std::string& name);
std::vector<DatasetRecord> all_datasets(Connection& conn);
void insert_dataset(Connection& conn, const DatasetSpec& spec);
// Serialises JSON for storage; invalid UTF-8 becomes a UsageError naming what.
std::string dump_json(const json& j, std::string_view what);

// --- rows (localrows.cpp) -----------------------------------------------------------------
// Each runs inside the caller's transaction.

// A dataset's counters, updated in memory while a call changes rows and saved once at the end.
struct RowCounters {
  int64_t next_index = 0;
  int64_t row_count = 0;
  int64_t row_bytes = 0;
  int64_t slots = 0;
  int64_t generation = 1;
  bool in_order = true;
  int64_t implicit_rows = 0;

  static RowCounters of(const DatasetRecord& ds) {
    return {ds.next_index, ds.row_count, ds.row_bytes, ds.slots, ds.generation, ds.in_order, ds.implicit_rows};
  }
};
// Stores the counters and bumps the dataset version.
void save_counters(Connection& conn, int64_t dataset_id, const RowCounters& counters);

// The live rows of a dataset in index order: index and slot per position (for datasets that
// are not plain; cached per dataset version by the backend).
struct RowOrder {
  std::vector<int64_t> index;
  std::vector<int64_t> slot;
};
std::shared_ptr<RowOrder> load_order(Connection& conn, const DatasetRecord& ds);

// Collects rows into a RowBatch: sample and label bytes gathered from the segment mapping,
// ids and metadata (when the batch carries them) from SQLite.
class BatchBuilder {
 public:
  BatchBuilder(const DatasetRecord& ds, const SegmentMap* segment);
  void reserve(size_t n);
  // Sample and label of the record at slot (ids, indices, metadata are the caller's).
  void add_record(int64_t slot);
  // A row selected by a statement with columns idx, id, slot, metadata.
  void add(const Stmt& row);
  // A row as for_each_row gives it: explicit (row) or implicit (row null).
  void add_row(int64_t idx, int64_t slot, const Stmt* row);
  RowBatch finish();
  RowBatch& batch() { return m_batch; }

 private:
  const DatasetRecord& m_ds;
  const SegmentMap* m_segment;
  size_t m_sample_bytes;
  size_t m_label_bytes;
  size_t m_rows = 0;
  RowBatch m_batch;
  std::vector<std::byte> m_data;
  std::vector<std::byte> m_labels;
};

// Appends b's records (sample then label bytes) to the segment file at path from slot
// first_slot on, with large writes, and syncs them (localbatch.cpp).
void write_records(const std::string& path, const DatasetRecord& ds, const RowBatch& b, int64_t first_slot);
// Upserts a checked batch (see the upsert rule in localbackend.cpp): its records are appended
// to the segment file past the committed slots and synced, then the rows name them.
void write_batch(Connection& conn, const DatasetRecord& ds, const RowBatch& batch, RowCounters& counters);
// Replaces the sample and/or merges metadata of one row; NotFoundError if id is missing. A new
// sample goes to a new slot (a committed record is never rewritten).
void update_one(Connection& conn, const DatasetRecord& ds, const std::string& id, const std::optional<Array>& sample,
                const std::optional<json>& patch, RowCounters& counters);
// Deletes one row; returns its index if it existed.
std::optional<int64_t> delete_by_id(Connection& conn, const DatasetRecord& ds, std::string_view id,
                                    RowCounters& counters);
void delete_by_index(Connection& conn, const DatasetRecord& ds, int64_t idx, RowCounters& counters);
// Indices of the rows whose metadata (and label, for $label) matches, in index order
// (reference semantics: Filter::matches).
std::vector<int64_t> matching_indices(Connection& conn, const DatasetRecord& ds, const Filter& filter);
// A search hit at index with score; `row` receives the row (its slot and metadata). Error when
// the row vanished.
struct RowRef;
QueryHit hit_at(Connection& conn, const DatasetRecord& ds, int64_t index, double score, RowRef& row);
// Exact top-k of n queries (n x dimension) in one scan of the rows (backends/common/blockscan)
// read from the segment mapping; order is null for a plain dataset.
std::vector<std::vector<QueryHit>> scan_query(Connection& conn, const DatasetRecord& ds, const SegmentMap* segment,
                                              const RowOrder* order, const std::vector<float>& queries, size_t n,
                                              const QueryOptions& options);
// Compacts when more than k_garbage_percent of at least k_compact_min_slots slots are dead
// (or, when forced, whenever a slot is dead): the live rows are copied in index order to a
// new generation's file, synced, and the rows repointed, in the caller's transaction. The
// replaced file goes into `obsolete`, to be unlinked after the commit. Returns whether it ran.
constexpr int64_t k_compact_min_slots = 1024;
constexpr int64_t k_garbage_percent = 50;
bool compact_rows(Connection& conn, const DatasetRecord& ds, RowCounters& counters, bool force,
                  std::vector<std::string>& obsolete);

// --- implicit rows (localimplicit.cpp) ---------------------------------------------------
// Layout 3: rows below index K = datasets.implicit_rows are implicit: id the decimal index,
// slot = index, no metadata, no `rows` entry, unless a row_deletions entry (dataset_id, idx)
// removes them. A row of the implicit range that is updated gets a deletion entry and a `rows`
// entry (it is materialised); a deleted one gets a deletion entry. So the live rows are the
// `rows` entries plus the indices below K without a deletion entry, and the two never overlap.

// One live row: explicit (metadata as stored) or implicit (id the decimal index, slot = idx).
struct RowRef {
  int64_t idx = 0;
  std::string id;
  int64_t slot = 0;
  std::optional<std::string> metadata_text;  // nullopt: NULL
  json metadata() const { return metadata_text ? json::parse(*metadata_text) : json(nullptr); }
};

// The index an implicit row with this id would have: id is a canonical decimal below k.
std::optional<int64_t> implicit_index_of(std::string_view id, int64_t k);
// Whether idx is a live implicit row (below k, no deletion entry).
bool implicit_live(Connection& conn, int64_t dataset_id, int64_t k, int64_t idx);
// Removes the implicit row at idx from the implicit range (a deletion entry).
void tombstone_implicit(Connection& conn, int64_t dataset_id, int64_t idx);
// The live row at idx, or with id; nullopt when there is none.
std::optional<RowRef> row_at_index(Connection& conn, const DatasetRecord& ds, int64_t idx);
std::optional<RowRef> row_with_id(Connection& conn, const DatasetRecord& ds, std::string_view id);
// Calls fn(idx, slot, row) for every live row with lo <= idx <= hi, in index order: row is a
// statement with columns idx, id, slot, metadata for an explicit row, null for an implicit one.
using RowVisitor = std::function<void(int64_t idx, int64_t slot, const Stmt* row)>;
void for_each_row(Connection& conn, const DatasetRecord& ds, int64_t lo, int64_t hi, const RowVisitor& fn);
// The indices with a deletion entry in [lo, hi], ascending.
std::vector<int64_t> deleted_indices(Connection& conn, int64_t dataset_id, int64_t lo, int64_t hi);
// Appends a batch of implicit rows when it extends the implicit range (first == K == next
// index == committed slots, ids the decimal indices, no metadata, no id held by a `rows`
// entry): nothing but the counters change. False when it does not qualify.
bool append_implicit(Connection& conn, const DatasetRecord& ds, const RowBatch& b, RowCounters& counters);
// How many leading rows of b (a batch at explicit indices, ids the decimal indices, no
// metadata) are live implicit rows whose stored record equals theirs: a batch that ingest
// --resume sends again over rows it committed, an upsert that would change nothing.
size_t unchanged_implicit(Connection& conn, const DatasetRecord& ds, const RowBatch& b, const RowCounters& counters);
// b without its first `skip` rows.
RowBatch rows_after(const RowBatch& b, size_t skip);
// After compaction copied the live rows of `ds` (as this transaction sees it) in `order` to
// slots 0..n-1: the rows whose position is their index stay implicit up to the first that is
// not (the new K); implicit rows past it are materialised at their new slot; explicit rows are
// repointed; the deletion entries go.
void repoint_compacted(Connection& conn, const DatasetRecord& ds, const RowOrder& order, RowCounters& counters);

}  // namespace vstash::backends::local
