// SPDX-License-Identifier: MIT
// The HNSW index of one local dataset (Debian's libhnswlib-dev, header-only): built from
// the dataset's rows after an ingest, saved as one file beside the store, loaded by query,
// searched for candidates that are then rescored with exact_score, so hits carry the
// contract's scores and tie order (backend.hpp "Scores"); only recall is approximate.
// Which dataset version an index covers is recorded in the store (see localindex.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/common/scoring.hpp"
#include "backends/local/localstore.hpp"
#include "src/profile.hpp"

namespace vstash::backends::local {

// Profile keys of the local store (docs/backends.md "Local HNSW index"; bench/hnsw_bench.sh
// measures the trade-off: recall@10 and queries/s on clustered and random 1M x 128 rows).
struct HnswParams {
  int m = 16;                 // hnsw_m: links per node (level 0 has 2m)
  int ef_construction = 200;  // hnsw_ef_construction: candidates per insert
  int ef_search = 64;         // hnsw_ef_search: candidates per query for k <= 10 (search_breadth)
  int64_t min_rows = 50000;   // hnsw_min_rows: smaller datasets are always scanned exactly
};

// How many candidates the graph yields for a top-k query: --ef (if given) as given, else
// hnsw_ef_search scaled by k / 10 (recall@k follows the candidates per hit); at least k.
size_t search_breadth(std::optional<int> ef, const HnswParams& params, size_t k);

// Supplies the rows to index: fills indices and rows (count x dim float32) with the next
// block and returns count, 0 when done.
using RowSource = std::function<size_t(std::vector<int64_t>& indices, std::vector<float>& rows)>;

class LocalIndex {
 public:
  ~LocalIndex();
  LocalIndex(const LocalIndex&) = delete;
  LocalIndex& operator=(const LocalIndex&) = delete;

  // Builds over every row source yields (at most capacity rows), on every core. progress
  // (if set) hears ("building index: hnsw", rows added, capacity) after each block.
  static std::unique_ptr<LocalIndex> build(Metric metric, size_t dim, size_t capacity, const HnswParams& params,
                                           const RowSource& source, const IndexProgressFn& progress);
  // Maps a file written by save() and searches it in place (read-only, shared with the page
  // cache; no copy, no per-node allocation); Error naming the file if it is unreadable, not an
  // index of `rows` rows of this dimension, or damaged (a size or link out of range).
  static std::unique_ptr<LocalIndex> load(const std::string& path, Metric metric, size_t dim, int64_t rows);
  // Writes the index atomically (temporary file, fsync, rename); returns its size in bytes.
  int64_t save(const std::string& path) const;

  size_t size() const;
  // The float32 values of the row at index (as indexed, without cosine's extra value).
  std::vector<float> values(int64_t index) const;
  // The k best rows by exact score among the `breadth` (>= k) nearest candidates the graph
  // yields for query (dim floats), best first, ties by index; rows for which keep (if set)
  // is false are dropped before the k are chosen, so fewer than k may come back.
  std::vector<TopK::Entry> search(const float* query, size_t k, size_t breadth,
                                  const std::function<bool(int64_t)>& keep = {}) const;

  struct Impl;

 private:
  explicit LocalIndex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// Runs item(i) for every i in [0, n) on `threads` threads (the caller's among them), each
// taking the next i; the first exception stops the others and is rethrown here.
void parallel_for(size_t n, size_t threads, const std::function<void(size_t)>& item);

// --- the record in the store (table hnsw_index, created on first build) ------------------

// What the store records of a built index.
struct IndexRecord {
  int64_t version = -1;  // the dataset version the index covers
  int64_t rows = 0;
  std::string file;  // name within the sidecar directory
  int64_t bytes = 0;
  int m = 0;
  int ef_construction = 0;
};
// The sidecar directory of a store file (shared with the row segments): "STORE.segments".
std::string sidecar_dir(const std::string& store_path);
// The index file name of a dataset: "<dataset id>.hnsw".
std::string index_file_name(int64_t dataset_id);
// The record of dataset_id, if an index was built (runs in the caller's transaction).
std::optional<IndexRecord> find_index_record(Connection& conn, int64_t dataset_id);
// Replaces the record (creating the table if needed), in the caller's write transaction.
void save_index_record(Connection& conn, int64_t dataset_id, const IndexRecord& record);
// Drops the record, in the caller's write transaction (the file is the caller's to remove).
void delete_index_record(Connection& conn, int64_t dataset_id);
// "index: hnsw m=16 ef_construction=200, 1000000 rows (current)" or "... stale (...)", for stats.
std::string describe_index(const std::optional<IndexRecord>& record, const DatasetRecord& ds, int64_t min_rows);

// --- what the backend calls -------------------------------------------------------------

// The hnsw_* keys of a local profile; UsageError naming the key for a value out of range.
HnswParams hnsw_params(const Profile& profile);

// Loaded indexes, one per dataset, reused while the record (version, file size) is unchanged.
// Loading a graph reads about as many bytes as one exact scan, so a dataset's index is loaded
// only once this process has asked it k_load_after queries (counting the n about to run);
// before that get() returns null and the scan answers.
class IndexCache {
 public:
  static constexpr int64_t k_load_after = 8;
  std::shared_ptr<const LocalIndex> get(const std::string& store_path, const DatasetRecord& ds,
                                        const IndexRecord& record, size_t n);

 private:
  struct Entry {
    int64_t version = -1;
    int64_t bytes = -1;
    int64_t queries = 0;
    std::shared_ptr<const LocalIndex> index;
  };
  std::mutex m_mutex;
  std::map<int64_t, Entry> m_entries;
};

// The hits of n queries (n x dim) answered from the dataset's index, read in the caller's
// transaction; nullopt when the exact scan must answer instead: options.exact, at most
// params.min_rows rows, no current index (missing or stale), a query the scan rejects
// (it reports the error), a selective filter (matching under 1/k_selective of the rows)
// or a filter that leaves fewer than k of the candidates.
std::optional<std::vector<std::vector<QueryHit>>> index_query(Connection& conn, const DatasetRecord& ds,
                                                              const std::vector<float>& queries, size_t n,
                                                              const QueryOptions& options, const HnswParams& params,
                                                              IndexCache& cache);
constexpr int64_t k_selective = 10;

// Builds the index of ds from backend.read_rows and saves it in the sidecar directory of
// store_path; the caller records it. Returns the record (version: ds.version).
IndexRecord build_index_file(Backend& backend, const DatasetRecord& ds, const std::string& store_path,
                             const HnswParams& params, const IndexProgressFn& progress);

}  // namespace vstash::backends::local
