// SPDX-License-Identifier: MIT
// Qdrant's dataset records for the catalog (backends/common/catalog.hpp), and the collections
// behind them.
//
// Dataset D's record is a point of the reserved collection __vstash_catalog (id
// uuid5("dataset:D"), vector [1]) with payload {name, spec (catalog::spec_to_json),
// next_index, filter_aids}; filter_aids (the record's extra) says that every row carries
// _keys and _num (qdrantpoints.hpp); its version is the payload's JSON text.
// Qdrant has no conditional write, so compare_and_set writes the record and succeeds: a
// read-modify-write, as the catalog point always was. Re-reading to compare first would cost
// a request per ingest batch (tests/integration/qdrant_test.py counts them) and still leave
// a race. So a named writer (the ranks of a sharded load, RowStore::set_writer) writes a part
// of its own instead (backends/common/writerparts.hpp): a point of the reserved collection
// __vstash_writers (id uuid5 of the dataset and writer, payload the part and {"dataset": D},
// a keyword index on "dataset"), which only that writer writes; D's record then carries
// "writers": true. One process still takes one writer connection per dataset.
// D's rows live in collection D (under custom sharding: shard key D of a shared collection,
// qdrantshards.hpp): one unnamed vector of the row size with Distance Cosine /
// Euclid / Dot, and payload indexes on _id (keyword), _idx (integer), _keys (keyword) and
// label (integer or float, scalar labels), so servers in strict mode accept the filters
// vstash itself sends.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backends/common/catalog.hpp"
#include "backends/common/writerparts.hpp"
#include "backends/qdrant/qdrantclient.hpp"

namespace vstash::backends::qdrant {

// Qdrant collection names: 1..255 bytes, none of < > : " / \ | ? * NUL or 0x1F, and not the
// reserved prefix "__vstash_". Throws UsageError naming the dataset.
void validate_dataset_name(const std::string& name);

// Whether a dataset record says its rows carry the filter aids.
bool has_filter_aids(const catalog::DatasetRecord& record);

class QdrantDatasets final : public catalog::SplitRecords {
 public:
  explicit QdrantDatasets(RestClient& client) : m_client(client) {}

  std::string location() const override { return m_client.location(); }
  // Creates the collection (or checks the one found) and its payload indexes, once per
  // process and dataset: an ingest calls create_dataset at every resume point.
  void ensure_collection(const DatasetSpec& spec);
  // The collection holding the dataset's rows: its own, or under custom sharding (profile
  // shard_key: auto, qdrantshards.hpp) the shared one of its dimension and metric.
  std::string collection_of(const DatasetSpec& spec) const;

 private:
  // Validates the name first (every lookup of a dataset does).
  std::optional<catalog::DatasetRecord> shared_get(const std::string& name) override;
  std::vector<catalog::DatasetRecord> shared_list() override;
  // Creates the collection, then the record (last writer wins: see above).
  bool shared_insert(const catalog::DatasetRecord& record) override;
  bool shared_compare_and_set(const catalog::DatasetRecord& seen, const catalog::DatasetRecord& next) override;
  // Removes the record and the collection (also a collection left by an interrupted drop).
  bool shared_remove(const std::string& name) override;
  // The points of __vstash_writers whose "dataset" is the name (none before that collection).
  std::vector<catalog::WriterPart> load_parts(const std::string& name) override;
  // Creates __vstash_writers and its index on "dataset" once per process, then upserts.
  void save_part(const std::string& name, const catalog::WriterPart& part) override;
  void drop_parts(const std::string& name) override;

  // Notes where a record's rows live (custom sharding) and returns it.
  catalog::DatasetRecord placed(catalog::DatasetRecord record);
  void prepare_collection(const std::string& collection, const DatasetSpec& spec, bool custom);
  void put(const catalog::DatasetRecord& record);
  void ensure_catalog();

  RestClient& m_client;
  std::atomic<bool> m_catalog_ready = false;
  std::atomic<bool> m_writers_ready = false;
  std::mutex m_mutex;
  std::set<std::string> m_ensured;  // collections this process has created or checked
};

}  // namespace vstash::backends::qdrant
