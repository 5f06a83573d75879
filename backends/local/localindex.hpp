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
  int m = 16;                   // hnsw_m: links per node (level 0 has 2m)
  int ef_construction = 200;    // hnsw_ef_construction: candidates per insert
  int ef_search = 64;           // hnsw_ef_search: candidates per query for k <= 10 (search_breadth)
  int64_t min_rows = 50000;     // hnsw_min_rows: smaller datasets are always scanned exactly
  double target_recall = 0.95;  // hnsw_target_recall: what calibration looks for, in (0, 1]
  bool ef_search_set = false;   // hnsw_ef_search given in the profile: queries use it, not calibration
};

// What a build measured of its graph (localcalibration.cpp): the smallest breadth of
// k_ef_ladder whose recall@10 on sampled rows reaches the target, and whether the index is
// worth using at it. Old indexes have none: queries then use hnsw_ef_search as before.
struct Calibration {
  int ef = 0;          // the breadth chosen; 0: no breadth of the ladder reached the target
  double recall = 0;   // estimated recall@10 at ef (at the widest tried if ef is 0)
  int tried_ef = 0;    // the widest breadth tried
  int64_t sample = 0;  // rows sampled as queries
  double links = 0;    // graph links examined per query at tried_ef (the cost proxy)
  double target = 0;   // the hnsw_target_recall it was calibrated for
  bool used = false;   // ef reached the target at links <= rows / k_cost_fraction
};
// The breadths calibration tries, narrowest first; it stops at the first that reaches the
// target or costs more than rows / k_cost_fraction links per query.
inline const std::vector<int> k_ef_ladder = {16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024};
// The index answers only if its calibrated breadth examines at most rows / 20 links per query:
// a link costs about 3 rows of the BLAS block scan (random access, one query at a time;
// bench/hnsw_bench.sh), so above that the index is not clearly cheaper than the scan.
constexpr int64_t k_cost_fraction = 20;
constexpr int64_t k_calibration_rows = 200;

// The exact top-k row indices of each of n queries (n x dim floats), best first.
using ExactTop =
    std::function<std::vector<std::vector<int64_t>>(const std::vector<float>& queries, size_t n, size_t k)>;
class LocalIndex;
// The positions (ascending, fixed seed) of the rows a build of `rows` rows holds out of its
// graph to calibrate it: min(k_calibration_rows, rows / 10) of them.
std::vector<size_t> calibration_positions(size_t rows);
// Compares the graph's top 10 for each of the n queries (n x dim floats, rows not in the
// graph) at each breadth of ladder with exact's top 10 (leaving out the rows `absent` from the
// graph) and returns what it found, stopping at the first breadth that reaches target or
// examines more than max_links links per query (a build passes rows / k_cost_fraction);
// progress (if set) hears ("building index: calibrating", step, steps).
Calibration calibrate(const LocalIndex& index, const std::vector<float>& queries, const std::vector<int64_t>& absent,
                      double target, const std::vector<int>& ladder, double max_links, const ExactTop& exact,
                      const IndexProgressFn& progress);
// "estimated recall@10 0.97 at ef 64 on 200 sampled rows" or "not used: ...; queries scan".
std::string describe_calibration(const Calibration& c, int64_t rows);

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
  // Rows kept out of the graph until `before` has seen it (calibration's fresh queries, the
  // rows at these positions of the source's order), then inserted.
  struct HoldOut {
    std::vector<size_t> positions;  // ascending
    std::function<void(const LocalIndex&, const std::vector<int64_t>& indices, const std::vector<float>& rows)> before;
  };
  static std::unique_ptr<LocalIndex> build(Metric metric, size_t dim, size_t capacity, const HnswParams& params,
                                           const RowSource& source, const IndexProgressFn& progress,
                                           const HoldOut* hold_out = nullptr);
  // Maps a file written by save() and searches it in place (read-only, shared with the page
  // cache; no copy, no per-node allocation); Error naming the file if it is unreadable, not an
  // index of `rows` rows of this dimension, or damaged (a size or link out of range).
  static std::unique_ptr<LocalIndex> load(const std::string& path, Metric metric, size_t dim, int64_t rows);
  // Writes the index atomically (temporary file, fsync, rename); returns its size in bytes.
  int64_t save(const std::string& path) const;

  size_t size() const;
  size_t dimension() const;
  // Graph links examined by searches asked to count them, so far (hnswlib's distance
  // computations metric, plus the upper levels' distances).
  int64_t links_examined() const;
  // The float32 values of the row at index (as indexed, without cosine's extra value).
  std::vector<float> values(int64_t index) const;
  // The k best rows by exact score among the `breadth` (>= k) nearest candidates the graph
  // yields for query (dim floats), best first, ties by index; rows for which keep (if set)
  // is false are dropped before the k are chosen, so fewer than k may come back.
  // count: add the links examined to links_examined().
  std::vector<TopK::Entry> search(const float* query, size_t k, size_t breadth,
                                  const std::function<bool(int64_t)>& keep = {}, bool count = false) const;

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
  std::optional<Calibration> calibration;  // table hnsw_calibration; none for older indexes
};
// The sidecar directory of a store file (shared with the row segments): "STORE.segments".
std::string sidecar_dir(const std::string& store_path);
// The index file name of a dataset: "<dataset id>.hnsw".
std::string index_file_name(int64_t dataset_id);
// The record of dataset_id, if an index was built (runs in the caller's transaction).
std::optional<IndexRecord> find_index_record(Connection& conn, int64_t dataset_id);
// Replaces the record (creating the tables if needed), in the caller's write transaction.
void save_index_record(Connection& conn, int64_t dataset_id, const IndexRecord& record);
// Drops the record, in the caller's write transaction (the file is the caller's to remove).
void delete_index_record(Connection& conn, int64_t dataset_id);
// "index: hnsw m=16 ef_construction=200, 1000000 rows; estimated recall@10 ..." or
// "...: stale (...)", for stats.
std::string describe_index(const std::optional<IndexRecord>& record, const DatasetRecord& ds, const HnswParams& params);

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
// params.min_rows rows, no current index (missing or stale), an index its calibration found
// not worth using (unless --ef or hnsw_ef_search is given), a query the scan rejects
// (it reports the error), a selective filter (matching under 1/k_selective of the rows)
// or a filter that leaves fewer than k of the candidates.
std::optional<std::vector<std::vector<QueryHit>>> index_query(Connection& conn, const DatasetRecord& ds,
                                                              const std::vector<float>& queries, size_t n,
                                                              const QueryOptions& options, const HnswParams& params,
                                                              IndexCache& cache);
constexpr int64_t k_selective = 10;

// Builds the index of ds from backend.read_rows, calibrates it against backend.query_many's
// exact answers and saves it in the sidecar directory of store_path; the caller records it.
// Returns the record (version: ds.version).
IndexRecord build_index_file(Backend& backend, const DatasetRecord& ds, const std::string& store_path,
                             const HnswParams& params, const IndexProgressFn& progress);

}  // namespace vstash::backends::local
