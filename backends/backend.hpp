// SPDX-License-Identifier: MIT
// The one interface every store implements: local (SQLite), pgvector, Redis, Qdrant and
// Pinecone. It carries the Classical Backend document's methods in C++ form. Behaviour
// common to all stores is specified here, in the contract comments, and checked once by
// tests/contract/, which runs against every backend.
//
// Data model
// - A dataset is a named, ordered set of rows. Each row has a string id (unique in the
//   dataset), a sample array (the dataset's dtype and row shape; its float32 view is the
//   vector that queries search), an optional label (the dataset's label dtype and shape) and
//   optional JSON object metadata.
// - Every row carries an index: its position in the file or insert order. Rows are read back
//   in index order, so a batch is addressed by offset. Deletes leave gaps; "position" below
//   means rank in index order among live rows.
// - A checkpoint is a model's state at an epoch: named arrays, scalar metrics and metadata.
//   Its reference ("path") is MODEL@EPOCH; MODEL@latest resolves to the highest epoch saved.
//
// Errors: backends throw vstash::Error subclasses (src/errors.hpp): NotFoundError for a
// missing dataset/checkpoint, ConflictError for a spec mismatch, RetryableError when the
// server is unreachable or rate-limits, UsageError for input the store cannot hold.
// Messages name the server (host:port, never a password) and the dataset.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "src/array.hpp"
#include "src/filter.hpp"

namespace vstash {
class Profile;
}

namespace vstash::backends {

using json = nlohmann::json;

enum class Metric { cosine, euclidean, dot };

// What a command means to do with the store it opens. A command that only reads opens it
// read_only: the store is never created or written, so a store in a read-only file or
// directory can be read, and one that does not exist is NotFoundError naming where it was
// looked for (a mistyped path is not a new empty store). Stores whose connections do not
// differ (the servers) ignore it.
enum class Access { read_write, read_only };
std::string_view metric_name(Metric m);   // "cosine", "euclidean", "dot"
Metric parse_metric(std::string_view s);  // also accepts "l2", "euclid", "dotproduct", "ip"

// What a dataset holds. Two specs are compatible when dtype, row shape, label dtype/shape
// and metric are equal.
struct DatasetSpec {
  std::string name;
  DType dtype = DType::f32;
  Shape row_shape;                   // e.g. {128} for vectors, {28, 28} for images
  std::optional<DType> label_dtype;  // no labels when empty
  Shape label_shape;                 // {} for scalar labels
  Metric metric = Metric::cosine;
  json metadata = json::object();  // dataset-level metadata (store_training_data's)

  int64_t dimension() const { return shape_product(row_shape); }
};

struct DatasetInfo {
  DatasetSpec spec;
  int64_t rows = 0;             // live rows
  int64_t next_index = 0;       // one past the highest index ever written
  int64_t bytes = 0;            // storage used, best effort (0 if unknown)
  json extra = json::object();  // backend-specific facts for `stats` (index type, ...)
};

// A block of rows. data has shape {n, row_shape...}; labels, when present, {n, label_shape...};
// ids, indices and metadata have n entries (metadata entries may be null).
struct RowBatch {
  std::vector<std::string> ids;
  std::vector<int64_t> indices;
  Array data;
  std::optional<Array> labels;
  std::vector<json> metadata;

  size_t size() const { return ids.size(); }
};

struct QueryOptions {
  int64_t top_k = 10;
  const Filter* filter = nullptr;  // null or empty: no filter
  bool include_values = false;     // fill QueryHit::values
  bool include_metadata = true;
  // Exact scan, no approximate index (pgvector: no index scan; Qdrant: exact; local: no HNSW).
  // Stores that cannot honour it throw UsageError.
  bool exact = false;
  // Search-time breadth of an HNSW index (local hnsw_ef_search, pgvector hnsw.ef_search,
  // Qdrant hnsw_ef); unset: the store's default. Ignored by stores that always scan exactly.
  std::optional<int> ef = std::nullopt;
};

// Scores, the same on every backend (README "Scores"):
//   cosine    -> cosine similarity in [-1, 1], higher is closer
//   dot       -> inner product, higher is closer
//   euclidean -> L2 distance (not squared), lower is closer
// Hits come best first; ties break by index ascending.
struct QueryHit {
  std::string id;
  int64_t index = -1;
  double score = 0;
  std::optional<std::vector<float>> values;
  json metadata;  // null unless include_metadata
};

struct Checkpoint {
  std::string model;
  int64_t epoch = 0;
  std::map<std::string, Array> arrays;  // "parameters", "optimizer/m", ...
  std::map<std::string, double> metrics;
  json metadata = json::object();
  std::string created_at;  // RFC 3339 UTC, set by the backend on save
  bool overwrite = false;  // save only: replace an existing MODEL@EPOCH
};

struct CheckpointInfo {
  std::string path;  // MODEL@EPOCH
  std::string model;
  int64_t epoch = 0;
  std::map<std::string, double> metrics;
  int64_t bytes = 0;
  std::string created_at;
  bool latest = false;
};

// One training worker's latest report (issue "training workflow").
struct ProgressRecord {
  std::string run;
  int64_t rank = 0;
  int64_t epoch = 0;
  int64_t step = 0;
  std::map<std::string, double> metrics;
  std::string updated_at;  // RFC 3339 UTC, set by the backend
};

struct Stats {
  std::string backend;   // "local", "pgvector", ...
  std::string location;  // path or host:port/db, redacted
  std::vector<DatasetInfo> datasets;
  std::map<std::string, int64_t> checkpoints_per_model;
  int64_t store_bytes = 0;
  json extra = json::object();  // server version, cache hits/misses, ...
};

// How far an index build has got: the server's phase name and its units (tuples or blocks;
// total 0 when the phase has no count).
struct IndexProgress {
  std::string phase;
  int64_t done = 0;
  int64_t total = 0;
};
using IndexProgressFn = std::function<void(const IndexProgress&)>;

class Backend {
 public:
  virtual ~Backend() = default;

  // "local", "pgvector", "redis", "qdrant", "pinecone".
  virtual std::string kind() const = 0;

  // --- datasets -------------------------------------------------------------------------
  // Creates the dataset, or does nothing if it exists with a compatible spec (dataset-level
  // metadata is then merged). Throws ConflictError naming both specs if incompatible.
  virtual void create_dataset(const DatasetSpec& spec) = 0;
  // The dataset's spec and counts, or nullopt if it does not exist.
  virtual std::optional<DatasetInfo> dataset_info(const std::string& dataset) = 0;
  virtual std::vector<DatasetInfo> list_datasets() = 0;
  // Removes the dataset and every row. Returns false if it did not exist.
  virtual bool drop_dataset(const std::string& dataset) = 0;

  // --- rows -----------------------------------------------------------------------------
  // Writes rows; an existing id is replaced whole (upsert), so re-sending a batch is safe.
  // When batch.indices is empty the backend assigns next_index, next_index+1, ...
  // Atomic per call on transactional stores: afterwards all rows are visible or none.
  // Throws NotFoundError if the dataset does not exist, UsageError on dtype/shape mismatch.
  virtual void write_rows(const std::string& dataset, const RowBatch& batch) = 0;
  // Up to count live rows starting at position offset, in index order.
  virtual RowBatch read_rows(const std::string& dataset, int64_t offset, int64_t count) = 0;
  // The rows at the given positions, in the order given (a shuffled batch).
  virtual RowBatch read_positions(const std::string& dataset, const std::vector<int64_t>& positions) = 0;
  // The samples and labels of the rows at the given positions, for readers that use nothing
  // else (a streamed batch): data and labels as read_positions; ids are n empty strings,
  // indices and metadata may be empty (a store that keeps them apart skips the lookup).
  virtual RowBatch read_samples(const std::string& dataset, const std::vector<int64_t>& positions) {
    return read_positions(dataset, positions);
  }
  // The rows with these ids, in the order given; missing ids are left out. Rows carry their
  // stored ids, which may be spelled otherwise than asked (see id_key).
  virtual RowBatch fetch(const std::string& dataset, const std::vector<std::string>& ids) = 0;
  // The form under which the store tells ids apart: ids with one key name one row. Qdrant
  // makes a UUID id its point id, so "ABC..." and "abc..." are the same row there; callers
  // that match asked ids against fetched ones compare keys.
  virtual std::string id_key(const std::string& id) const { return id; }
  // Replaces the vector and/or merges metadata keys of one row (a null value deletes a key).
  // Throws NotFoundError if the id does not exist.
  virtual void update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                          const std::optional<json>& metadata) = 0;
  // Deletes rows by id; returns how many existed.
  virtual int64_t delete_ids(const std::string& dataset, const std::vector<std::string>& ids) = 0;
  // Deletes every row whose metadata matches; returns how many.
  virtual int64_t delete_where(const std::string& dataset, const Filter& filter) = 0;
  // Number of rows matching (all rows for an empty filter).
  virtual int64_t count(const std::string& dataset, const Filter* filter) = 0;
  // Exact or ANN top-k by the dataset's metric (see QueryHit for scores).
  virtual std::vector<QueryHit> query(const std::string& dataset, const std::vector<float>& vector,
                                      const QueryOptions& options) = 0;
  // Top-k of each of n queries (queries: n x dimension float32, row-major): one hit list per
  // query, in order, each what query() returns for that row. Stores that scan on the client
  // (local, Redis) read the dataset once for all n; the default calls query() per row.
  virtual std::vector<std::vector<QueryHit>> query_many(const std::string& dataset, const std::vector<float>& queries,
                                                        size_t n, const QueryOptions& options);

  // --- checkpoints ----------------------------------------------------------------------
  // Saves atomically (readers see all of it or none) and returns MODEL@EPOCH. An existing
  // epoch is replaced only when checkpoint.overwrite is set; otherwise the save throws
  // ConflictError and leaves the stored checkpoint (arrays, metrics) as it was. Of several
  // processes saving the same new epoch at once without overwrite, exactly one succeeds.
  // MODEL@latest moves only forward in epoch, even when several processes save at once.
  virtual std::string save_checkpoint(const Checkpoint& checkpoint) = 0;
  // Accepts MODEL@EPOCH or MODEL@latest. Throws NotFoundError.
  virtual Checkpoint load_checkpoint(const std::string& path) = 0;
  // Every checkpoint of model (all models if empty), by model then epoch ascending.
  virtual std::vector<CheckpointInfo> list_checkpoints(const std::string& model) = 0;
  // Returns false if it did not exist. Deleting the latest moves latest to the next lower epoch.
  virtual bool delete_checkpoint(const std::string& path) = 0;

  // --- training progress ----------------------------------------------------------------
  // Records (run, rank)'s latest state, replacing the previous one.
  virtual void record_progress(const ProgressRecord& record) = 0;
  // Every worker's latest record of run (all runs if empty).
  virtual std::vector<ProgressRecord> list_progress(const std::string& run) = 0;

  // --- statistics -----------------------------------------------------------------------
  virtual Stats stats() = 0;

  // --- bulk loads -----------------------------------------------------------------------
  // Called by `vstash ingest` after every block is written (unless --no-index): a store that
  // builds its search structure after a bulk load, as pgvector's docs advise for its ANN
  // index, does it here rather than in the first query. progress (if set) hears how the
  // build goes, from another thread, ending with phase "done". Returns one line saying what
  // was built, or "" if nothing was needed.
  virtual std::string finish_ingest(const std::string& /*dataset*/, const IndexProgressFn& /*progress*/ = {}) {
    return {};
  }

  // --- tuning ---------------------------------------------------------------------------
  // How many connections `vstash ingest` should write blocks through at once by default:
  // more than one only where the store takes concurrent writers to one dataset without
  // serialising them (`--writers` overrides it).
  virtual int ingest_writers() const { return 1; }
  // The most writers one dataset takes at once without losing its counters (`--writers` above
  // this is refused).
  virtual int max_ingest_writers() const { return 64; }

  // --- maintenance ----------------------------------------------------------------------
  // Reclaims the space of deleted and replaced rows of dataset (every dataset if empty) in
  // stores that keep it until asked (local: rewrites its segment files); one line per
  // dataset compacted. Stores that reclaim space themselves return nothing.
  virtual std::vector<std::string> compact(const std::string& /*dataset*/) { return {}; }
};

// Parses MODEL@EPOCH / MODEL@latest. Throws UsageError naming the reference.
struct CheckpointRef {
  std::string model;
  std::optional<int64_t> epoch;  // nullopt = latest
  static CheckpointRef parse(const std::string& path);
  std::string to_string() const;
};
std::string checkpoint_path(const std::string& model, int64_t epoch);
// Throws the ConflictError of a save without overwrite that found MODEL@EPOCH stored:
// "LOCATION: checkpoint "M@E" already exists (use --overwrite to replace it)".
[[noreturn]] void throw_checkpoint_exists(const std::string& location, const std::string& path);
// Model names: 1..128 of [A-Za-z0-9._-]. Throws UsageError.
void validate_model_name(const std::string& model);
// Every store takes any dataset name of 1 to k_max_dataset_name_bytes bytes without control
// characters (which would corrupt `stats` tables and log lines). Throws UsageError.
constexpr size_t k_max_dataset_name_bytes = 255;
void check_dataset_name(const std::string& name);
// A spec read back from a store's catalog (a JSON record on a server we do not control, e.g.
// Qdrant and Pinecone): row and label shapes of at most k_max_catalog_row_elements elements,
// so that decoding rows never allocates from a corrupt shape. Throws Error naming `what`.
constexpr int64_t k_max_catalog_row_elements = int64_t{1} << 20;
void check_catalog_spec(const DatasetSpec& spec, std::string_view what);
// RFC 3339 UTC "now", e.g. 2026-11-25T12:00:00.123Z.
std::string now_rfc3339();
// Checkpoint and progress metrics as JSON, the way every store keeps them: JSON has no NaN or
// infinity, so a diverged run's non-finite values are stored as null and read back as NaN.
json metrics_to_json(const std::map<std::string, double>& metrics);
std::map<std::string, double> metrics_from_json(const json& j);

}  // namespace vstash::backends
