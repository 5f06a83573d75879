// SPDX-License-Identifier: MIT
// The catalog: a store's list of datasets and the product's rules on it, written once for
// every store. A store supplies the primitive operations on its dataset records
// (DatasetRecords: get, list, insert, compare-and-set, remove); the rules on top are here:
// when two specs are compatible, how a spec reads in every message, the spec's JSON form,
// how dataset metadata merges, how the next index is reserved, and what `require` says when
// a dataset is missing. tests/contract/test_datasets.cpp checks that the messages read the
// same on every backend.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/common/contention.hpp"
#include "backends/storetypes.hpp"
#include "src/errors.hpp"

namespace vstash::backends::catalog {

// --- rules on specs ---------------------------------------------------------------------
// Compatible: equal dtype, row shape, metric and label dtype, and (with labels) label shape.
bool compatible(const DatasetSpec& stored, const DatasetSpec& requested);
// The one description of a spec in messages: "float32 [128] cosine, labels int64 []" or
// "float32 [128] cosine, no labels".
std::string describe(const DatasetSpec& spec);
// "LOCATION: dataset "NAME" exists as STORED; requested REQUESTED" (ConflictError, exit 5).
ConflictError spec_conflict(const std::string& location, const DatasetSpec& stored, const DatasetSpec& requested);
// "LOCATION: dataset "NAME" does not exist" (NotFoundError, exit 4).
NotFoundError dataset_not_found(const std::string& location, const std::string& name);
// Throws spec_conflict unless compatible.
void require_compatible(const std::string& location, const DatasetSpec& stored, const DatasetSpec& requested);

// The spec's JSON form, kept by stores whose catalog is a JSON record (Redis, Qdrant,
// Pinecone): {"dtype", "row_shape", "label_dtype" (null without labels), "label_shape",
// "metric", "metadata"}. spec_from_json also reads the older form without "label_dtype";
// a record that is not a spec throws Error naming `what` and the field, and shapes are
// bounded as check_catalog_spec says.
json spec_to_json(const DatasetSpec& spec);
DatasetSpec spec_from_json(const std::string& name, const json& j, const std::string& what);

// Dataset-level metadata after create_dataset(requested) on a stored dataset: the stored
// object with the requested keys added or replaced (a non-object counts as empty).
json merged_metadata(const json& stored, const json& requested);

// --- records and the operations a store provides ----------------------------------------
struct DatasetRecord {
  DatasetSpec spec;
  int64_t next_index = 0;
  // The store's compare-and-set token (a generation, a row version); opaque here.
  std::string version;
  // What else the store keeps in its record (Qdrant's filter_aids, Redis's incarnation).
  json extra = json::object();
};

class DatasetRecords {
 public:
  virtual ~DatasetRecords() = default;
  // host:port, path or URL for messages (never a secret).
  virtual std::string location() const = 0;
  virtual std::optional<DatasetRecord> get(const std::string& name) = 0;
  virtual std::vector<DatasetRecord> list() = 0;
  // Creates the dataset under this record, with whatever storage the store keeps for it;
  // false when a dataset of that name exists (another process made it meanwhile).
  virtual bool insert(const DatasetRecord& record) = 0;
  // Replaces the record when it is still `seen` (same version); false when it changed or
  // went away meanwhile. A store whose operations run under one lock or transaction may
  // always succeed.
  virtual bool compare_and_set(const DatasetRecord& seen, const DatasetRecord& next) = 0;
  // Removes the record (and the dataset's storage); false when it did not exist.
  virtual bool remove(const std::string& name) = 0;
};

// --- the catalog ------------------------------------------------------------------------
class Catalog {
 public:
  explicit Catalog(DatasetRecords& records) : m_records(records) {}

  // create_dataset's contract (backends/rowstore.hpp): creates the dataset, or checks that
  // the stored one is compatible and merges dataset metadata into it. `fresh` is the record
  // a new dataset starts with (its spec is `spec`; extra as the store wants). Returns true
  // when it created the dataset.
  bool create(const DatasetSpec& spec, DatasetRecord fresh = {});
  std::optional<DatasetRecord> find(const std::string& name) { return m_records.get(name); }
  // The record, or dataset_not_found.
  DatasetRecord require(const std::string& name);
  // Reserves n indices after the highest ever written and returns the first of them.
  int64_t reserve(const std::string& name, int64_t n);
  // Moves next_index to at least `end` (rows written at given indices); never backwards.
  void advance(const std::string& name, int64_t end);

 private:
  template <class Change>
  DatasetRecord update(const std::string& name, Change&& change);

  DatasetRecords& m_records;
};

// How many times a compare-and-set loop re-reads before giving up with ConflictError
// (concurrent writers keep changing the record): the shared limit of backends/common/contention.hpp.
constexpr int k_catalog_attempts = k_contention_attempts;

}  // namespace vstash::backends::catalog
