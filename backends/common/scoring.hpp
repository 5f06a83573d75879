// SPDX-License-Identifier: MIT
// Exact scoring and top-k selection, for the stores that scan (local, Redis) and for
// checking ANN stores in tests. Score definitions: see QueryHit in backend.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::backends {

double exact_score(Metric metric, const float* a, const float* b, size_t dim);
// True when score a ranks before score b for this metric.
inline bool ranks_before(Metric metric, double a, double b) { return metric == Metric::euclidean ? a < b : a > b; }
// Best first by the metric, ties by row index: the one order every backend returns.
inline void sort_hits(Metric metric, std::vector<QueryHit>& hits) {
  std::stable_sort(hits.begin(), hits.end(), [metric](const QueryHit& a, const QueryHit& b) {
    return a.score != b.score ? ranks_before(metric, a.score, b.score) : a.index < b.index;
  });
}

// Keeps the k best (score, index) pairs seen; ties break by lower index.
class TopK {
 public:
  TopK(Metric metric, size_t k) : m_metric(metric), m_k(k) {}
  void offer(double score, int64_t index, size_t slot);
  // Best first. slot is the caller's handle for the candidate (e.g. its row in a block).
  struct Entry {
    double score;
    int64_t index;
    size_t slot;
  };
  std::vector<Entry> take_sorted();
  // Worst score kept so far when full, for early rejection.
  bool full() const { return m_heap.size() >= m_k; }
  // The entry a better one would replace (the worst kept) once k are kept; else null.
  const Entry* worst() const { return !m_heap.empty() && full() ? &m_heap.front() : nullptr; }

 private:
  bool better(const Entry& a, const Entry& b) const;
  Metric m_metric;
  size_t m_k;
  std::vector<Entry> m_heap;  // worst on top
};

}  // namespace vstash::backends
