// SPDX-License-Identifier: MIT
// A process-local memory cache of a data loader's batches, bounded in bytes (issue 4 item 4:
// "local memory cache for active batches"). It sits between the loader and the backend: a
// batch read again (a later unshuffled epoch, a resumed or restarted loader, an evaluation
// pass over the same positions) is served from memory instead of a round trip.
//
// - Keyed by (dataset, its row count and next_index, the exact positions): an insert or a
//   delete through any process changes the counts, so such batches miss instead of going
//   stale. An in-place update_row does not change them: call invalidate(dataset) after one.
// - Least recently used batches are evicted once the bytes held exceed the capacity; a single
//   batch larger than the whole capacity is not cached at all. Bytes are the arrays' bytes
//   plus ids, indices, metadata text and the key (an estimate of the heap held, not exact).
// - Thread-safe: the loader's workers share one cache. Several loaders may share it too.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::training {

struct BatchCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t evictions = 0;
  int64_t entries = 0;
  int64_t bytes = 0;
  int64_t capacity = 0;
};

class BatchCache {
 public:
  // capacity_bytes >= 0; 0 caches nothing (every get misses).
  explicit BatchCache(int64_t capacity_bytes);

  // The cached batch for these positions of the dataset (as described by info), or nullopt.
  std::optional<backends::RowBatch> get(const backends::DatasetInfo& info, const std::vector<int64_t>& positions);
  // Stores a copy; evicts least recently used batches to stay within the capacity.
  void put(const backends::DatasetInfo& info, const std::vector<int64_t>& positions, const backends::RowBatch& batch);
  // Drops every batch of the dataset (all datasets when empty).
  void invalidate(const std::string& dataset = {});

  BatchCacheStats stats() const;
  int64_t capacity() const { return m_capacity; }

 private:
  struct Entry {
    std::string key;
    std::string dataset;
    backends::RowBatch batch;
    int64_t bytes = 0;
  };
  using List = std::list<Entry>;  // most recently used first

  void evict_locked();
  void erase_locked(List::iterator it);

  const int64_t m_capacity;
  mutable std::mutex m_mutex;
  List m_lru;
  std::unordered_map<std::string, List::iterator> m_index;
  BatchCacheStats m_stats;
};

// Estimated heap bytes a batch holds (arrays, ids, indices, metadata text).
int64_t batch_bytes(const backends::RowBatch& batch);

}  // namespace vstash::training
