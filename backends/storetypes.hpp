// SPDX-License-Identifier: MIT
// The values the store interfaces (backends/backend.hpp) take and return: specs, rows,
// queries, checkpoints, progress records and statistics, and the rules on names and
// references that every store applies the same way.
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
// Qdrant and Pinecone): row and label shapes of positive dimensions and at most
// k_max_catalog_row_elements elements, so that decoding rows never allocates from a corrupt shape.
// Throws Error naming `what`.
constexpr int64_t k_max_catalog_row_elements = int64_t{1} << 20;
void check_catalog_spec(const DatasetSpec& spec, std::string_view what);
// RFC 3339 UTC "now", e.g. 2026-11-25T12:00:00.123Z.
std::string now_rfc3339();
// Checkpoint and progress metrics as JSON, the way every store keeps them: JSON has no NaN or
// infinity, so a diverged run's non-finite values are stored as null and read back as NaN.
json metrics_to_json(const std::map<std::string, double>& metrics);
std::map<std::string, double> metrics_from_json(const json& j);

}  // namespace vstash::backends
