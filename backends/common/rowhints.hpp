// SPDX-License-Identifier: MIT
// Where a row lives, without a scan: the stored id of a row index, kept per process for the
// REST stores that read rows by id (Qdrant, Pinecone). Rows written with the default id (the
// decimal index, as ingest gives them) need no entry: their id is computed. Other ids are
// learned from replies. A hint is never trusted: a reader keeps only rows whose stored index
// is the one it asked for, so a stale hint costs a fallback read, never a wrong row.
// Header-only (inline statics): one table per process, shared by every Backend instance and
// so by the data loader's worker connections.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace vstash::backends::hints {

// At most this many learned ids per dataset (a bounded table; past it, reads fall back).
inline constexpr size_t k_max_learned = size_t{1} << 22;

class RowHints {
 public:
  // The process's hints for a dataset at a store location ("qdrant host:port", an index).
  static std::shared_ptr<RowHints> of(const std::string& location, const std::string& dataset) {
    static std::mutex mutex;
    static std::map<std::string, std::shared_ptr<RowHints>> table;
    std::lock_guard lock(mutex);
    auto& slot = table[location + '\n' + dataset];
    if (!slot) {
      slot = std::make_shared<RowHints>();
    }
    return slot;
  }

  // The id to try for a row index: a learned one, else the default id (the decimal index).
  std::string id_of(int64_t index) const {
    std::lock_guard lock(m_mutex);
    auto it = m_ids.find(index);
    return it != m_ids.end() ? it->second : std::to_string(index);
  }
  // Remembers that the row at index has this id (the default id needs no entry).
  void learn(int64_t index, std::string id) {
    std::lock_guard lock(m_mutex);
    if (id == std::to_string(index)) {
      m_ids.erase(index);
    } else if (m_ids.size() < k_max_learned || m_ids.count(index) != 0) {
      m_ids[index] = std::move(id);
    }
  }
  // Whether every row's id was learned while the dataset's catalog state was `state` (then a
  // miss is a row gone meanwhile, not an unknown id: no second full read for that state).
  bool complete_at(const std::string& state) const {
    std::lock_guard lock(m_mutex);
    return !m_complete.empty() && m_complete == state;
  }
  void set_complete(const std::string& state) {
    std::lock_guard lock(m_mutex);
    m_complete = state;
  }

 private:
  mutable std::mutex m_mutex;
  std::unordered_map<int64_t, std::string> m_ids;
  std::string m_complete;
};

}  // namespace vstash::backends::hints
