// SPDX-License-Identifier: MIT
// The Pinecone store class, private to backends/pinecone/ (only the factory in
// pineconebackend.hpp is public). One serverless index per profile, one namespace per dataset.
// Its methods live in one file per job:
//   pineconebackend.cpp  datasets (create, info, list, drop), statistics, the factory
//   pineconewrites.cpp   write_rows (upsert), update_row, delete_ids, delete_where
//   pineconereads.cpp    read_rows, read_positions, fetch, count: rows by position and id
//   pineconequery.cpp    query: nearest neighbours
// The indexes and record operations are pineconeindexes.hpp, the dataset catalog
// pineconedatasets.hpp, checkpoints and progress pineconecheckpoints.hpp, the record forms
// pineconerecords.cpp.
//
// Mapping (README "Pinecone"):
// - dataset D -> namespace namespace_prefix + D ("" and "__default__" are the same namespace);
//   its spec and counters live as a record in the reserved namespace __vstash_catalog__.
// - rows -> records (see pineconerecords.cpp); rows are addressed by metadata "_idx" and read
//   back by id (GET /vectors/fetch), the id of an index hinted as pineconereads.cpp says.
// - checkpoints -> namespace __vstash_checkpoints__ (pineconecheckpoints.cpp).
// - progress -> namespace __vstash_progress__, one record per (run, rank).
// Scores: Pinecone's euclidean score is the squared L2 distance; it is converted to L2.
// Indexes: see pineconeindexes.hpp (a dataset whose dimension or metric differs from a single
// index's is refused with ConflictError). Other processes' concurrent writes to one dataset are
// not coordinated beyond the catalog's re-read before each write (pineconedatasets.hpp).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "backends/common/catalog.hpp"
#include "backends/pinecone/pineconecheckpoints.hpp"
#include "backends/pinecone/pineconedatasets.hpp"
#include "backends/pinecone/pineconeindexes.hpp"
#include "backends/pinecone/pineconeinternal.hpp"

namespace vstash::backends::pinecone {

class PineconeBackend final : public Backend {
 public:
  explicit PineconeBackend(const Profile& profile)
      : m_indexes(profile),
        m_datasets(m_indexes),
        m_catalog(m_datasets),
        m_checkpoints(checkpoint_records(m_indexes)),
        m_progress(progress_records(m_indexes)) {}

  std::string kind() const override { return "pinecone"; }
  CheckpointStore& checkpoints() override { return m_checkpoints; }
  ProgressStore& progress() override { return m_progress; }

  // pineconebackend.cpp
  void create_dataset(const DatasetSpec& spec) override;
  std::optional<DatasetInfo> dataset_info(const std::string& dataset) override;
  std::vector<DatasetInfo> list_datasets() override;
  bool drop_dataset(const std::string& dataset) override;
  Stats stats() override;
  // next_index lives in a catalog record that Pinecone cannot update atomically: one writer
  // connection per process and dataset (requests within a write already run `parallel` at
  // once); processes named by set_writer keep parts of their own (pineconedatasets.hpp).
  int max_ingest_writers() const override { return 1; }
  void set_writer(const std::string& writer) override { m_datasets.set_writer(writer); }

  // pineconewrites.cpp
  void write_rows(const std::string& dataset, const RowBatch& batch) override;
  void update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                  const std::optional<json>& metadata) override;
  int64_t delete_ids(const std::string& dataset, const std::vector<std::string>& ids) override;
  int64_t delete_where(const std::string& dataset, const Filter& filter) override;

  // pineconereads.cpp
  RowBatch read_rows(const std::string& dataset, int64_t offset, int64_t count) override;
  RowBatch read_positions(const std::string& dataset, const std::vector<int64_t>& positions) override;
  RowBatch fetch(const std::string& dataset, const std::vector<std::string>& ids) override;
  int64_t count(const std::string& dataset, const Filter* filter) override;

  // pineconequery.cpp
  std::vector<QueryHit> query(const std::string& dataset, const std::vector<float>& vector,
                              const QueryOptions& options) override;

 private:
  // Live rows per window of k_max_top_k indices, and the sorted live indices of the windows
  // that have gaps, valid while next_index is unchanged.
  struct PositionCache {
    int64_t next_index = -1;
    std::vector<int64_t> counts;
    std::map<int64_t, std::vector<int64_t>> indices;
  };

  // pineconebackend.cpp
  // The dataset's catalog entry, or catalog::dataset_not_found.
  CatalogEntry require(const std::string& dataset);
  // Forgets the dataset's position cache (after a write or delete).
  void invalidate(const std::string& dataset);

  // pineconewrites.cpp
  std::vector<int64_t> existing_indices(const CatalogEntry& entry, const RowBatch& batch);

  // pineconereads.cpp
  json query_body(const CatalogEntry& entry, int64_t top_k, const json& filter, bool values, bool metadata);
  std::vector<int64_t> window_counts(const CatalogEntry& entry, const json* filter);
  PositionCache& position_cache(const CatalogEntry& entry);
  const std::vector<int64_t>& window_indices(const CatalogEntry& entry, PositionCache& pc, int64_t w);
  std::vector<int64_t> positions_to_indices(const CatalogEntry& entry, const std::vector<int64_t>& positions);
  RowBatch read_indices(const CatalogEntry& entry, const std::vector<int64_t>& indices);
  void query_indices(const CatalogEntry& entry, const std::vector<int64_t>& wanted,
                     std::map<int64_t, DecodedRow>& by_index);

  Indexes m_indexes;
  DatasetTable m_datasets;
  catalog::Catalog m_catalog;
  chunked::ChunkedCheckpoints m_checkpoints;
  records::RecordProgress m_progress;
  std::mutex m_mutex;
  std::map<std::string, PositionCache> m_positions;
};

}  // namespace vstash::backends::pinecone
