// SPDX-License-Identifier: MIT
// The pgvector store's class, shared by the files that implement it (internal to this folder):
//   pgvectorbackend.cpp   profile, connection, lazy schema, `require`, stats, the factory
//   pgvectordatasets.cpp  create, describe, list and drop datasets (through the catalog)
//   pgupsert.cpp          write_rows: binary COPY, and the upsert path for existing ids
//   pgreads.cpp           read_rows, read_positions, read_samples (pgsamples.cpp), fetch, count
//   pgupdates.cpp         update_row, delete_ids, delete_where
//   pgquery.cpp           query (exact or through the ANN index)
//   pgindex.cpp           the ANN index: when it is built, how, finish_ingest
//   pgcheckpoints.cpp, pgprogress.cpp  checkpoints and progress (their own classes)
//   pgreplicas.cpp        which session serves a read (read replicas); pgcitus.cpp  Citus tables
// Connects lazily at the first operation and creates its tables then.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.hpp"
#include "backends/pgvector/pgcheckpoints.hpp"
#include "backends/pgvector/pgconnection.hpp"
#include "backends/pgvector/pgcopy.hpp"
#include "backends/pgvector/pgdatasets.hpp"
#include "backends/pgvector/pgprogress.hpp"
#include "backends/pgvector/pgreplicas.hpp"
#include "backends/pgvector/pgschema.hpp"

namespace vstash::backends::pgvector {

constexpr int64_t k_max_dimension = 16000;       // pgvector's vector type
constexpr int64_t k_max_index_dimension = 2000;  // hnsw and ivfflat on vector
constexpr int64_t k_index_min_rows = 1000;       // below this an exact scan is as fast
constexpr int64_t k_default_ef_search = 200;

enum class IndexKind { none, hnsw, ivfflat };
std::string_view index_kind_name(IndexKind k);

struct IndexSettings {
  IndexKind kind = IndexKind::hnsw;
  int64_t m = 16;
  int64_t ef_construction = 64;
  // pgvector's own default (40) found 39% of the true top 10 on 100k x 128 random vectors
  // (issue 16); 200 searches five times wider (docs/backends.md); `query --exact` is exact.
  int64_t ef_search = k_default_ef_search;
  int64_t lists = 0;   // 0: from the row count at build time
  int64_t probes = 0;  // 0: sqrt(lists)
};

// Row columns for binary results: jsonb as text so the bytes are plain JSON.
inline constexpr const char* k_read_columns = "id, idx, embedding, sample, label, metadata::text";

// "[1,2.5,...]": pgvector's text form of a vector.
std::string vector_literal(const std::vector<float>& v);
// A JSON array of ids, for jsonb_array_elements_text($n::jsonb).
std::string ids_json(const std::vector<std::string>& ids);

class PgvectorBackend final : public Backend {
 public:
  explicit PgvectorBackend(const Profile& p);
  std::string kind() const override { return "pgvector"; }
  CheckpointStore& checkpoints() override { return m_checkpoints; }
  ProgressStore& progress() override { return m_progress; }

  void create_dataset(const DatasetSpec& spec) override;
  std::optional<DatasetInfo> dataset_info(const std::string& dataset) override;
  std::vector<DatasetInfo> list_datasets() override;
  bool drop_dataset(const std::string& dataset) override;

  void write_rows(const std::string& dataset, const RowBatch& batch) override;
  RowBatch read_rows(const std::string& dataset, int64_t offset, int64_t count) override;
  RowBatch read_positions(const std::string& dataset, const std::vector<int64_t>& positions) override;
  // One round trip on a dense dataset seen before (pgsamples.hpp), else read_positions.
  RowBatch read_samples(const std::string& dataset, const std::vector<int64_t>& positions) override;
  RowBatch fetch(const std::string& dataset, const std::vector<std::string>& ids) override;
  void update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                  const std::optional<json>& metadata) override;
  int64_t delete_ids(const std::string& dataset, const std::vector<std::string>& ids) override;
  int64_t delete_where(const std::string& dataset, const Filter& filter) override;
  int64_t count(const std::string& dataset, const Filter* filter) override;
  std::vector<QueryHit> query(const std::string& dataset, const std::vector<float>& vector,
                              const QueryOptions& options) override;

  Stats stats() override;
  // Concurrent COPYs into one table proceed in parallel (explicit indices take the catalog
  // lock only for the final counter update), so two connections keep both the client's
  // encoder and a server backend busy.
  int ingest_writers() const override { return 2; }
  std::string finish_ingest(const std::string& dataset, const IndexProgressFn& progress) override;

 private:
  Tables& tables();
  std::string ctx(const std::string& dataset) const;
  // The dataset's catalog entry in the current transaction, or the catalog's not-found error;
  // for_update locks its catalog row until the transaction ends.
  CatalogEntry require(const std::string& dataset, bool for_update = false);
  // require on the session serving a read (pgreplicas.hpp), in its current transaction.
  CatalogEntry require_on(Session& s, const std::string& dataset);
  DatasetInfo info_of(const CatalogEntry& e);
  json index_stats() const;

  // pgupsert.cpp: the steps of write_rows.
  std::vector<int64_t> row_indices(const CatalogEntry& e, const RowBatch& batch, int64_t* highest) const;
  // Sends the batch through a staging table and INSERT ... ON CONFLICT; returns the new rows.
  int64_t upsert_rows(const CatalogEntry& e, const RowBatch& batch, const std::function<void(CopyEncoder&)>& produce,
                      int64_t* highest);

  RowBatch decode_rows(const CatalogEntry& e, const Result& r, int first_col) const;
  // read_positions, also giving the catalog entry it read (pgreads.cpp).
  RowBatch read_positions_seen(const std::string& dataset, const std::vector<int64_t>& positions, CatalogEntry* seen);
  int64_t delete_matching(const std::string& dataset, const std::string& what,
                          const std::function<std::pair<std::string, std::vector<Param>>()>& where);

  // pgquery.cpp: sets the index's search parameters for this transaction.
  void set_search_parameters(Session& s, const CatalogEntry& e, const QueryOptions& options, bool ann);
  // pgindex.cpp: true if the dataset has an ANN index to use (building it now if it is due);
  // `built` is set when this call built it.
  bool ensure_index(const CatalogEntry& e, bool* built = nullptr, const IndexProgressFn& progress = {});
  void build_index(const CatalogEntry& e, const IndexProgressFn& progress);
  int64_t lists_for(int64_t rows) const;

  Session m_session;
  ReadRoute m_reads;  // the primary or a read replica, for row reads
  std::string m_prefix;
  IndexSettings m_index;
  Tables m_tables;
  bool m_ready = false;
  std::set<std::string> m_indexed;                // rows tables known to have their ANN index
  std::map<std::string, CatalogEntry> m_sampled;  // read_samples: the entry each dataset last had
  PgCheckpoints m_checkpoints{m_session, [this]() -> const Tables& { return tables(); }};
  PgProgress m_progress{m_session, [this]() -> const Tables& { return tables(); }};
};

}  // namespace vstash::backends::pgvector
