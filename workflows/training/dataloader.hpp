// SPDX-License-Identifier: MIT
// The training data loader (the Classical Backend document's create_data_loader and
// load_training_batch): one epoch of one rank's shard, in batches, prefetched by worker
// threads into a bounded queue.
//
// Guarantees
// - The batch sequence depends only on (dataset rows, batch_size, shuffle, seed, epoch,
//   drop_last, rank, world_size, remainder); never on num_workers or timing. Workers fetch
//   batch i into slot i % depth and next() hands them out in order.
// - The epoch order is sharding.hpp's EpochOrder (reproducible in Python), evaluated per batch
//   (no O(rows) permutation); shards are strided over it, or cut from global batches.
// - Memory: at most `depth` batches are loaded and not yet taken (plus the one the caller
//   holds), so memory is bounded by depth x batch bytes (plus the optional batch cache's
//   own byte capacity).
// - A worker's exception is rethrown by next() when the consumer reaches that batch (batches
//   before it are still delivered); afterwards next() keeps rethrowing it.
// - Destroying the loader early stops the workers and joins them; a load in flight finishes
//   first (backend calls are not interruptible).
//
// Backend is not required to be thread-safe: by default all workers share the given backend
// and take turns calling it, which still overlaps loading with the caller's work. Set
// LoaderOptions::connect to give each worker its own connection and load in parallel.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "backends/backend.hpp"
#include "workflows/training/batchcache.hpp"
#include "workflows/training/sharding.hpp"

namespace vstash::training {

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  int num_workers = 4;  // 0: load in the caller's thread inside next()
  uint64_t seed = 0;
  int64_t epoch = 0;       // a new order each epoch (when shuffled)
  bool drop_last = false;  // drop the shard's last, short batch
  int64_t rank = 0;
  int64_t world_size = 1;
  RemainderPolicy pad_shards = RemainderPolicy::uneven;  // when world_size does not divide rows
  // strided: DistributedSampler's shards, batch_size rows per rank; global: batch_size is the
  // global batch size, split between the ranks (sharding.hpp's "Global order").
  OrderKind order = OrderKind::strided;
  // The positions the epoch is over (batch --filter/--split: selection.hpp), ascending; null:
  // every row of the dataset.
  std::shared_ptr<const std::vector<int64_t>> selection;
  // Queue depth in batches; 0: 2 * max(1, num_workers), or through a SampleReader (see
  // samples_only) as many batches as fit 8 MiB, up to 32 (handed over in runs).
  int64_t prefetch = 0;
  int64_t start_position = 0;  // resume: index of the first batch to deliver
  // Opens a private backend for one worker (called num_workers times by the constructor,
  // in the caller's thread). Empty: the workers share the backend given to the factory.
  std::function<std::unique_ptr<backends::Backend>()> connect;
  // Optional memory cache of batches, bounded in bytes (batchcache.hpp), shared by the
  // workers and possibly by several loaders: a batch whose positions were loaded before is
  // served from it. Null: every batch comes from the backend.
  std::shared_ptr<BatchCache> cache;
  // Data and labels only (Backend::read_samples, without a cache): a shuffled batch's ids
  // may be empty strings, which stores keeping them apart need not look up. A store with a
  // SampleReader (backends/rowstore.hpp) is then read through it: the epoch's rows as of the
  // loader's creation, gathered by the workers in parallel from one reader (no connection
  // per worker, no store round trip per batch).
  bool samples_only = false;
  // With a SampleReader, load in the caller's thread whatever num_workers says (options()
  // then reports 0): a gather is a memcpy costing about what a handoff to a thread does, so
  // workers only add handoffs and contend for memory bandwidth (batch --stream's default).
  bool gather_inline = false;
};

class DataLoader {
 public:
  virtual ~DataLoader() = default;
  // The next batch in order, or nullopt once the epoch's shard is exhausted. Rethrows the
  // exception a worker (or the backend, with num_workers 0) raised for this batch.
  virtual std::optional<backends::RowBatch> next() = 0;
  // Waits up to timeout for the next batch to be loaded by a worker: true when next() will
  // return at once (a batch or an error is waiting, or the epoch is over). Always false with
  // no workers, where next() loads in the caller's thread. Lets a caller that must stay
  // responsive (the Python module checking for Ctrl-C) wait in slices without a thread of its own.
  virtual bool wait_ready(std::chrono::milliseconds timeout) = 0;
  // Hands a batch taken from next() back once the caller is done with it: its buffers carry
  // a later batch, so a stream allocates nothing per batch (optional; any batch may be given).
  virtual void recycle(backends::RowBatch&& batch) = 0;
  // Index of the batch next() returns next: with the epoch, what to resume from.
  virtual int64_t position() const = 0;
  // Batches in the epoch's shard, including those skipped by start_position.
  virtual int64_t num_batches() const = 0;
  // Rows of the epoch's shard (before drop_last).
  virtual int64_t shard_rows() const = 0;
  virtual const backends::DatasetInfo& dataset() const = 0;
  virtual const LoaderOptions& options() const = 0;
  // The queue depth and the most batches ever loaded but not yet taken (never above depth).
  virtual int64_t depth() const = 0;
  virtual int64_t max_buffered() const = 0;
};

// Throws NotFoundError if the dataset does not exist, UsageError for bad options (batch_size
// < 1, num_workers < 0, bad rank/world_size, start_position beyond the epoch). The backend
// must outlive the loader.
std::unique_ptr<DataLoader> create_data_loader(backends::Backend& backend, const std::string& dataset,
                                               const LoaderOptions& options);
// The document's signature: create_data_loader(dataset, batch_size=32, shuffle=True, num_workers=4).
std::unique_ptr<DataLoader> create_data_loader(backends::Backend& backend, const std::string& dataset,
                                               int64_t batch_size = 32, bool shuffle = true, int num_workers = 4);

// One batch of up to batch_size rows starting at row `offset` of the epoch order (the
// document's load_training_batch): shuffled rows come from epoch_order(rows, true, seed,
// epoch), so consecutive offsets walk one permutation. Costs O(batch_size) (the order is
// evaluated at the batch's positions only). Past the end it returns an empty batch.
backends::RowBatch load_training_batch(backends::Backend& backend, const std::string& dataset, int64_t batch_size,
                                       bool shuffle, int64_t offset, uint64_t seed, int64_t epoch = 0);

}  // namespace vstash::training
