// SPDX-License-Identifier: MIT
// Exact top-k of a block of queries over rows streamed in blocks, scored matrix x matrix
// with OpenBLAS sgemm: the one scan of every store that searches on the client (local,
// Redis). Scores and tie order are exactly those of exact_score + TopK (scoring.hpp):
// sgemm (float32, any summation order) only ranks candidates; every row that could
// enter a query's top k under a float32 error bound is rescored with exact_score. A few
// queries (up to k_fused_queries) skip sgemm, which degenerates into gemv and copies the
// block: one fused float32 pass per row gives its products and its squared norm.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/common/scoring.hpp"

namespace vstash::backends {

class BlockScan {
 public:
  // queries: nq x dim float32, row-major, all finite (the caller validates). k per query.
  BlockScan(Metric metric, size_t dim, const float* queries, size_t nq, size_t k);
  ~BlockScan();
  BlockScan(const BlockScan&) = delete;
  BlockScan& operator=(const BlockScan&) = delete;

  // Rows read where they lie (a memory mapping): row p of n is the dim float32 values at
  // base + slot(p) * stride bytes, scored as index(p); slots null means slot p, indices null
  // means index p. base and stride keep floats aligned; the memory is only read, and not
  // changed until scan() returns.
  struct Rows {
    const std::byte* base = nullptr;
    size_t stride = 0;
    const int64_t* slots = nullptr;
    const int64_t* indices = nullptr;
    const float* row(size_t p) const {
      return reinterpret_cast<const float*>(base + (slots ? static_cast<size_t>(slots[p]) : p) * stride);
    }
    int64_t index(size_t p) const { return indices ? indices[p] : static_cast<int64_t>(p); }
  };
  // Scores rows [0, n) of `rows` in place, as if each went through next_row (same results and
  // ties). A few queries: blocks of rows shared by two threads, each into its own top k,
  // merged. More: sgemm reads contiguous rows in place (gathered rows are copied).
  void scan(const Rows& rows, size_t n);
  // Room for the next row (dim floats) of the current block, scored as row `index`.
  // Indices must be distinct; order does not matter. The block is scored when full.
  float* next_row(int64_t index);
  // Scores a partly filled block; finish() calls it.
  void flush();
  // Per query, best first: exact_score of the kept rows and their indices (slot unused).
  std::vector<std::vector<TopK::Entry>> finish();

  static constexpr size_t k_block_rows = 4096;
  static constexpr size_t k_fused_queries = 8;

 private:
  void score_block();
  // sgemm over rows [begin, end) of `rows` (a constant stride: slots null), then select().
  void score_sgemm(const Rows& rows, size_t begin, size_t end);
  // Offers rows [begin, end) to the TopK of queries [q_begin, q_end) (see score_sgemm).
  void select(const Rows& rows, size_t begin, size_t end, size_t q_begin, size_t q_end);
  // The fused pass for a few queries over rows [begin, end): products and row norms in
  // float32, then the same test, into `top` (one TopK per query).
  void select_fused(const Rows& rows, size_t begin, size_t end, std::vector<TopK>& top) const;
  // The fused pass over [0, n) on two threads, each into TopKs of its own, merged into m_top.
  void scan_split(const Rows& rows, size_t n);
  Rows block_rows(const float* rows, const int64_t* indices) const;
  // Fused pass, full block: scored on a second thread while the caller fills the next one.
  void hand_off();
  // Waits for the second thread's block; rethrows what it threw.
  void drain();
  struct Pipeline;
  std::unique_ptr<Pipeline> m_pipeline;
  Metric m_metric;
  size_t m_dim;
  size_t m_nq;
  size_t m_k;
  std::vector<float> m_queries;       // nq x dim
  std::vector<double> m_query_norms;  // L2 norms, in double
  std::vector<TopK> m_top;            // exact scores
  std::vector<float> m_rows;          // k_block_rows x dim, the first m_indices.size() in use
  std::vector<int64_t> m_indices;     // of the rows in the block
  std::vector<float> m_products;      // nq x block, from sgemm
  std::vector<double> m_row_norms;
};

// Convenience: the top k of each query over n rows (n x dim) with the given indices.
std::vector<std::vector<TopK::Entry>> block_topk(Metric metric, size_t dim, const float* queries, size_t nq,
                                                 const float* rows, const int64_t* indices, size_t n, size_t k);

}  // namespace vstash::backends
