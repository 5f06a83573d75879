// SPDX-License-Identifier: MIT
// The byte-bounded LRU batch cache (contract in batchcache.hpp).
#include "workflows/training/batchcache.hpp"

#include <fmt/format.h>

#include "src/errors.hpp"

namespace vstash::training {

using backends::DatasetInfo;
using backends::RowBatch;

namespace {

// Exact key: dataset name, its counts (a cheap version), then the positions as raw bytes.
// The name is length-prefixed so no name can run into the counts.
std::string make_key(const DatasetInfo& info, const std::vector<int64_t>& positions) {
  std::string key = fmt::format("{}:{}|{}|{}|", info.spec.name.size(), info.spec.name, info.rows, info.next_index);
  key.append(reinterpret_cast<const char*>(positions.data()), positions.size() * sizeof(int64_t));
  return key;
}

}  // namespace

int64_t batch_bytes(const RowBatch& batch) {
  size_t n = batch.data.nbytes() + (batch.labels ? batch.labels->nbytes() : 0);
  n += batch.indices.size() * sizeof(int64_t);
  for (const auto& id : batch.ids) {
    n += id.size() + sizeof(std::string);
  }
  for (const auto& m : batch.metadata) {
    n += m.is_null() ? sizeof(backends::json) : m.dump().size() + sizeof(backends::json);
  }
  return static_cast<int64_t>(n);
}

BatchCache::BatchCache(int64_t capacity_bytes) : m_capacity(capacity_bytes) {
  if (capacity_bytes < 0) {
    throw UsageError(fmt::format("batch cache size {} must not be negative", capacity_bytes));
  }
  m_stats.capacity = capacity_bytes;
}

std::optional<RowBatch> BatchCache::get(const DatasetInfo& info, const std::vector<int64_t>& positions) {
  const std::string key = make_key(info, positions);
  std::lock_guard lock(m_mutex);
  const auto found = m_index.find(key);
  if (found == m_index.end()) {
    ++m_stats.misses;
    return std::nullopt;
  }
  ++m_stats.hits;
  m_lru.splice(m_lru.begin(), m_lru, found->second);  // now most recently used
  return found->second->batch;
}

void BatchCache::put(const DatasetInfo& info, const std::vector<int64_t>& positions, const RowBatch& batch) {
  std::string key = make_key(info, positions);
  const int64_t bytes = batch_bytes(batch) + static_cast<int64_t>(key.size());
  if (bytes > m_capacity) {
    return;  // it would evict everything and still not fit
  }
  std::lock_guard lock(m_mutex);
  if (const auto found = m_index.find(key); found != m_index.end()) {
    erase_locked(found->second);
  }
  m_lru.push_front(Entry{key, info.spec.name, batch, bytes});
  m_index.emplace(std::move(key), m_lru.begin());
  m_stats.bytes += bytes;
  ++m_stats.entries;
  evict_locked();
}

void BatchCache::invalidate(const std::string& dataset) {
  std::lock_guard lock(m_mutex);
  for (auto it = m_lru.begin(); it != m_lru.end();) {
    const auto next = std::next(it);
    if (dataset.empty() || it->dataset == dataset) {
      erase_locked(it);
    }
    it = next;
  }
}

BatchCacheStats BatchCache::stats() const {
  std::lock_guard lock(m_mutex);
  return m_stats;
}

void BatchCache::evict_locked() {
  while (m_stats.bytes > m_capacity && !m_lru.empty()) {
    erase_locked(std::prev(m_lru.end()));
    ++m_stats.evictions;
  }
}

void BatchCache::erase_locked(List::iterator it) {
  m_stats.bytes -= it->bytes;
  --m_stats.entries;
  m_index.erase(it->key);
  m_lru.erase(it);
}

}  // namespace vstash::training
