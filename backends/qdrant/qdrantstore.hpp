// SPDX-License-Identifier: MIT
// The Qdrant backend's class, private to backends/qdrant/. Its methods are split by job:
// - qdrantbackend.cpp   construction from a profile, datasets (create, info, list, drop), stats
// - qdrantwrites.cpp    write_rows (the upsert path), update_row, delete_ids, delete_where
// - qdrantreads.cpp     read_rows, read_positions, fetch (rows by point id; positions as indices)
// - qdrantsearch.cpp    query, count, and the client-side filter fallback they share
// Dataset records and collections: qdrantcatalog.hpp; rows as points: qdrantpoints.hpp;
// checkpoints and progress: qdrantcheckpoints.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "backends/common/catalog.hpp"
#include "backends/common/chunkedcheckpoints.hpp"
#include "backends/common/recordprogress.hpp"
#include "backends/qdrant/qdrantcatalog.hpp"
#include "backends/qdrant/qdrantclient.hpp"
#include "backends/qdrant/qdrantfilter.hpp"

namespace vstash::backends::qdrant {

inline constexpr int64_t k_default_request_bytes = 4 * 1024 * 1024;
inline constexpr int64_t k_server_request_bytes = 32 * 1024 * 1024;  // service.max_request_size_mb default

// A 400 from a strict-mode server for a filter on a key without a payload index.
bool is_index_required(const UsageError& e);
// The row index (_idx) of a point record.
int64_t idx_of(const json& record);

class QdrantBackend final : public Backend {
 public:
  explicit QdrantBackend(const Profile& profile);
  // With VSTASH_QDRANT_TIMINGS set, reports where write_rows spent its time (bench/qdrant_bench.sh).
  ~QdrantBackend() override;

  std::string kind() const override { return "qdrant"; }
  CheckpointStore& checkpoints() override { return m_checkpoints; }
  ProgressStore& progress() override { return m_progress; }

  // qdrantbackend.cpp
  void create_dataset(const DatasetSpec& spec) override;
  std::optional<DatasetInfo> dataset_info(const std::string& dataset) override;
  std::vector<DatasetInfo> list_datasets() override;
  bool drop_dataset(const std::string& dataset) override;
  Stats stats() override;
  // next_index lives in a catalog point that Qdrant cannot update conditionally
  // (qdrantcatalog.hpp): one writer connection per process and dataset (requests within a
  // write already run `parallel` at once); processes named by set_writer keep parts of their own.
  int max_ingest_writers() const override { return 1; }
  void set_writer(const std::string& writer) override { m_datasets.set_writer(writer); }
  std::string id_key(const std::string& id) const override;

  // qdrantwrites.cpp
  void write_rows(const std::string& dataset, const RowBatch& batch) override;
  void update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                  const std::optional<json>& metadata) override;
  int64_t delete_ids(const std::string& dataset, const std::vector<std::string>& ids) override;
  int64_t delete_where(const std::string& dataset, const Filter& filter) override;

  // qdrantreads.cpp
  RowBatch read_rows(const std::string& dataset, int64_t offset, int64_t count) override;
  RowBatch read_positions(const std::string& dataset, const std::vector<int64_t>& positions) override;
  RowBatch fetch(const std::string& dataset, const std::vector<std::string>& ids) override;

  // qdrantsearch.cpp
  std::vector<QueryHit> query(const std::string& dataset, const std::vector<float>& vector,
                              const QueryOptions& options) override;
  int64_t count(const std::string& dataset, const Filter* filter) override;

 private:
  using Record = catalog::DatasetRecord;

  // The dataset's record, or the catalog's not-found error.
  Record require(const std::string& dataset);
  // {"collection": C} and, under custom sharding, {"shard_key": dataset} (info and stats).
  json placement_of(const DatasetSpec& spec) const;

  // writes
  std::vector<int64_t> row_indices(const std::string& dataset, const RowBatch& batch, const std::vector<json>& pids,
                                   int64_t next_index);
  void advance_next_index(const Record& record, const std::vector<int64_t>& indices);
  std::vector<std::string> encode_parallel(const DatasetSpec& spec, const RowBatch& batch,
                                           const std::vector<int64_t>& indices) const;

  // reads
  Call count_call(const std::string& dataset, const json& filter) const;
  int64_t count_all(const std::string& dataset);
  // Rows at positions; with clamp, positions past the live rows are left out, not refused.
  RowBatch by_positions(const Record& record, const std::vector<int64_t>& positions, bool clamp);
  RowBatch rows_at(const Record& record, const std::vector<int64_t>& indices);
  void complete(const Record& record, const std::vector<int64_t>& wanted, std::map<int64_t, json>& found);
  std::vector<json> scroll_calls(const std::vector<Call>& calls);
  const std::vector<int64_t>& live_indices(const Record& record, int64_t live);
  void invalidate(const std::string& dataset);

  // search
  json search_points(const std::string& dataset, const std::vector<float>& vector, const QueryOptions& options,
                     const Record& record, const json& filter);
  json search_by_pages(const std::string& dataset, const std::vector<float>& vector, const QueryOptions& options,
                       const Record& record, const TranslatedFilter& tf);
  // The client-side fallback, in bounded pages: hands each page's matching point ids to fn.
  void for_each_match_page(const std::string& dataset, const Filter& filter, const TranslatedFilter& tf,
                           const std::function<void(const std::vector<json>&)>& fn);

  struct PositionCache {
    int64_t next_index = -1;
    int64_t rows = -1;
    std::vector<int64_t> indices;
  };

  RestClient m_client;
  QdrantDatasets m_datasets;
  catalog::Catalog m_catalog;
  chunked::ChunkedCheckpoints m_checkpoints;
  records::RecordProgress m_progress;
  int64_t m_max_bytes;
  int64_t m_parallel;
  double m_encode_s = 0;  // write_rows: building the JSON bodies
  double m_send_s = 0;    // write_rows: sending them (network + server)
  int64_t m_rows_sent = 0;
  int64_t m_bytes_sent = 0;
  std::mutex m_mutex;
  std::map<std::string, PositionCache> m_positions;
};

}  // namespace vstash::backends::qdrant
