// SPDX-License-Identifier: MIT
#include "backends/common/scoring.hpp"

#include <algorithm>
#include <cmath>

namespace vstash::backends {

double exact_score(Metric metric, const float* a, const float* b, size_t dim) {
  // Accumulate in double: scores must agree across backends to well below float noise.
  double dot = 0, na = 0, nb = 0, l2 = 0;
  switch (metric) {
    case Metric::dot:
      for (size_t i = 0; i < dim; ++i) {
        dot += static_cast<double>(a[i]) * b[i];
      }
      return dot;
    case Metric::euclidean:
      for (size_t i = 0; i < dim; ++i) {
        const double d = static_cast<double>(a[i]) - b[i];
        l2 += d * d;
      }
      return std::sqrt(l2);
    case Metric::cosine:
      for (size_t i = 0; i < dim; ++i) {
        dot += static_cast<double>(a[i]) * b[i];
        na += static_cast<double>(a[i]) * a[i];
        nb += static_cast<double>(b[i]) * b[i];
      }
      if (na == 0 || nb == 0) {
        return 0;
      }
      return dot / (std::sqrt(na) * std::sqrt(nb));
  }
  return 0;
}

bool TopK::better(const Entry& a, const Entry& b) const {
  if (a.score != b.score) {
    return ranks_before(m_metric, a.score, b.score);
  }
  return a.index < b.index;
}

void TopK::offer(double score, int64_t index, size_t slot) {
  Entry e{score, index, slot};
  auto worse_on_top = [this](const Entry& x, const Entry& y) { return better(x, y); };
  if (m_k == 0) {
    return;
  }
  if (m_heap.size() < m_k) {
    m_heap.push_back(e);
    std::push_heap(m_heap.begin(), m_heap.end(), worse_on_top);
  } else if (better(e, m_heap.front())) {
    std::pop_heap(m_heap.begin(), m_heap.end(), worse_on_top);
    m_heap.back() = e;
    std::push_heap(m_heap.begin(), m_heap.end(), worse_on_top);
  }
}

std::vector<TopK::Entry> TopK::take_sorted() {
  std::vector<Entry> out = std::move(m_heap);
  m_heap.clear();
  std::sort(out.begin(), out.end(), [this](const Entry& x, const Entry& y) { return better(x, y); });
  return out;
}

}  // namespace vstash::backends
