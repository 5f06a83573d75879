// SPDX-License-Identifier: MIT
// The row store: a store's datasets, their rows, search and statistics. Contract comments here
// are what tests/contract/ checks on every backend (the data model: backends/backend.hpp).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backends/storetypes.hpp"

namespace vstash::backends {

// One dataset's samples and labels as of one snapshot, gathered without a store round trip
// per call (a streamed epoch). Positions index the snapshot's live rows in index order, as
// read_samples' do. gather() may be called from several threads at once.
class SampleReader {
 public:
  virtual ~SampleReader() = default;
  // Live rows of the snapshot.
  virtual int64_t rows() const = 0;
  // Copies the sample bytes of the row at each position, in order, to data (positions.size()
  // x the spec's sample bytes) and its label bytes to labels (null when the dataset has no
  // labels). Throws UsageError for a position outside [0, rows()).
  virtual void gather(std::span<const int64_t> positions, std::byte* data, std::byte* labels) const = 0;
};

class RowStore {
 public:
  virtual ~RowStore() = default;

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
  // A SampleReader of the dataset's current snapshot, whose rows stay readable and unchanged
  // while it lives whatever writers do meanwhile; null when the store has none (callers use
  // read_samples). Throws NotFoundError if the dataset does not exist.
  virtual std::unique_ptr<SampleReader> sample_reader(const std::string& /*dataset*/) { return nullptr; }
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
  // Names the writer this connection writes for when several processes write one dataset at
  // once (rank R of a sharded load); "" (the default) is the single writer. Stores whose
  // dataset record has no atomic update (Qdrant, Pinecone) keep each named writer's counters
  // and metadata in a record of its own (backends/common/writerparts.hpp); others ignore it.
  virtual void set_writer(const std::string& /*writer*/) {}

  // --- maintenance ----------------------------------------------------------------------
  // Reclaims the space of deleted and replaced rows of dataset (every dataset if empty) in
  // stores that keep it until asked (local: rewrites its segment files); one line per
  // dataset compacted. Stores that reclaim space themselves return nothing.
  virtual std::vector<std::string> compact(const std::string& /*dataset*/) { return {}; }
};

}  // namespace vstash::backends
