// SPDX-License-Identifier: MIT
#include "backends/common/blockscan.hpp"

#include <cblas.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <utility>

#include "src/errors.hpp"

namespace vstash::backends {

namespace {

// OpenBLAS is loaded on the first scan, not linked: loading it costs every process (batch,
// stats, ingest) a few milliseconds of relocations, and its threads, started when it loads,
// spin on sched_yield and take a 2-core machine's second core from the command that runs.
using SgemmFn = decltype(&cblas_sgemm);

SgemmFn sgemm() {
  static const SgemmFn fn = [] {
    // Debian's libopenblas0 provides libopenblas.so.0; libblas.so.3 is the BLAS alternative.
    for (const char* lib : {"libopenblas.so.0", "libblas.so.3"}) {
      if (void* handle = dlopen(lib, RTLD_NOW | RTLD_LOCAL)) {
        if (void* f = dlsym(handle, "cblas_sgemm")) {
          return reinterpret_cast<SgemmFn>(f);
        }
      }
    }
    throw Error("exact search needs OpenBLAS: cannot load libopenblas.so.0 (install libopenblas0)");
  }();
  return fn;
}

double norm_of(const float* v, size_t dim) {
  double s = 0;
  for (size_t i = 0; i < dim; ++i) {
    s += static_cast<double>(v[i]) * v[i];
  }
  return std::sqrt(s);
}

// gamma bounds the relative error of a float32 product or squared norm of dim terms in any
// summation order, FMA or not (twice the classic dim * 2^-24 / (1 - dim * 2^-24), plus slack
// for the double arithmetic); underflow adds an absolute error of at most one 2^-150 per
// operation, which k_underflow(dim) bounds twice over.
double gamma_of(size_t dim) {
  const double u = std::ldexp(1.0, -24) * static_cast<double>(dim + 2);
  return 2.0 * u / (1.0 - u) + 1e-12;
}
double underflow_of(size_t dim) { return std::ldexp(static_cast<double>(dim + 2), -148); }

// A float32 dot product in k_lanes independent accumulators, which the compiler keeps in
// SIMD registers (a single accumulator would serialise every addition).
float lane_dot(const float* a, const float* b, size_t dim) {
  constexpr size_t k_lanes = 16;
  float acc[k_lanes] = {};
  size_t i = 0;
  for (; i + k_lanes <= dim; i += k_lanes) {
    for (size_t j = 0; j < k_lanes; ++j) {
      acc[j] += a[i + j] * b[i + j];
    }
  }
  for (size_t w = k_lanes / 2; w > 0; w /= 2) {  // a tree: the wide steps stay in SIMD
    for (size_t j = 0; j < w; ++j) {
      acc[j] += acc[j + w];
    }
  }
  float s = acc[0];
  for (; i < dim; ++i) {
    s += a[i] * b[i];
  }
  return s;
}

// Whether a row can be skipped for a query whose k-th exact score is `worst`: p is the
// float32 product, sq the float32 squared row norm, qn the query's norm (double). The row's
// true norm squared lies in [r2_lo, r2_hi]; the product within `bound` of the true one. A row
// is skipped only when its best case is strictly worse than worst (as in select()).
bool fused_skip(Metric metric, double p, double sq, double qn, double worst, double gamma, double underflow) {
  if (!std::isfinite(p) || !std::isfinite(sq) || !std::isfinite(worst)) {
    return false;
  }
  const double r2_lo = std::max(0.0, (sq - underflow) / (1 + gamma));
  const double r2_hi = (sq + underflow) / (1 - gamma);
  const double r_hi = std::sqrt(r2_hi);
  const double bound = gamma * qn * r_hi + underflow;
  double best_case = 0;
  double limit = worst;
  switch (metric) {
    case Metric::dot:
      best_case = p + bound;
      break;
    case Metric::cosine: {
      if (qn == 0 || r2_lo == 0) {
        return false;
      }
      const double top = p + bound;
      best_case = (top >= 0 ? top / (qn * std::sqrt(r2_lo)) : top / (qn * r_hi)) + 1e-12;
      break;
    }
    case Metric::euclidean:
      best_case = qn * qn + r2_lo - 2 * p - 2 * bound - 1e-12 * (qn * qn + r2_hi);
      limit = worst * worst * (1 + 1e-12);
      break;
  }
  return std::isfinite(best_case) && std::isfinite(limit) && ranks_before(metric, limit, best_case);
}

// Runs `there` on a new thread and `here` on this one; returns when both are done, rethrowing
// what either threw (this thread's first).
template <typename There, typename Here>
void on_two_threads(There there, Here here) {
  std::exception_ptr failed;
  std::thread other([&] {
    try {
      there();
    } catch (...) {
      failed = std::current_exception();
    }
  });
  try {
    here();
  } catch (...) {
    other.join();
    throw;
  }
  other.join();
  if (failed) {
    std::rethrow_exception(failed);
  }
}

}  // namespace

BlockScan::BlockScan(Metric metric, size_t dim, const float* queries, size_t nq, size_t k)
    : m_metric(metric), m_dim(dim), m_nq(nq), m_k(k), m_queries(queries, queries + nq * dim) {
  m_query_norms.reserve(nq);
  m_top.reserve(nq);
  for (size_t q = 0; q < nq; ++q) {
    m_query_norms.push_back(norm_of(queries + q * dim, dim));
    m_top.emplace_back(metric, k);
  }
  // Sized once: a resize per row would zero-fill every row before it is written.
  m_rows.resize(k_block_rows * dim);
  m_indices.reserve(k_block_rows);
}

// Rows given one by one (next_row: Redis, or samples converted to float32): the fused pass
// is cheap enough that filling a block takes as long as scoring it, so the caller's thread
// fills the next block while this one scores the last (rows read in place take scan()). Started with the second block,
// so a scan of one block never starts a thread.
const unsigned k_cores = std::thread::hardware_concurrency();

struct BlockScan::Pipeline {
  std::thread thread;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<float> rows;
  std::vector<int64_t> indices;
  bool busy = false;
  bool stop = false;
  std::exception_ptr failed;
};

BlockScan::~BlockScan() {
  if (m_pipeline) {
    {
      std::lock_guard lock(m_pipeline->mutex);
      m_pipeline->stop = true;
    }
    m_pipeline->changed.notify_all();
    m_pipeline->thread.join();
  }
}

void BlockScan::hand_off() {
  if (!m_pipeline) {
    m_pipeline = std::make_unique<Pipeline>();
    Pipeline& p = *m_pipeline;
    p.rows.resize(m_rows.size());
    p.thread = std::thread([this, &p] {
      std::unique_lock lock(p.mutex);
      while (true) {
        p.changed.wait(lock, [&] { return p.busy || p.stop; });
        if (!p.busy) {
          return;
        }
        lock.unlock();
        std::exception_ptr failed;
        try {
          select_fused(block_rows(p.rows.data(), p.indices.data()), 0, p.indices.size(), m_top);
        } catch (...) {
          failed = std::current_exception();
        }
        lock.lock();
        p.failed = failed;
        p.busy = false;
        p.changed.notify_all();
      }
    });
  }
  drain();
  {
    std::lock_guard lock(m_pipeline->mutex);
    std::swap(m_rows, m_pipeline->rows);
    std::swap(m_indices, m_pipeline->indices);
    m_pipeline->busy = true;
  }
  m_pipeline->changed.notify_all();
  m_indices.clear();
}

void BlockScan::drain() {
  std::unique_lock lock(m_pipeline->mutex);
  m_pipeline->changed.wait(lock, [&] { return !m_pipeline->busy; });
  if (auto failed = std::exchange(m_pipeline->failed, nullptr)) {
    std::rethrow_exception(failed);
  }
}

float* BlockScan::next_row(int64_t index) {
  if (m_indices.size() == k_block_rows) {
    if (m_nq <= k_fused_queries && k_cores > 1) {
      hand_off();
    } else {
      score_block();
    }
  }
  m_indices.push_back(index);
  return m_rows.data() + (m_indices.size() - 1) * m_dim;
}

void BlockScan::flush() {
  if (m_pipeline) {
    if (!m_indices.empty()) {
      hand_off();
    }
    drain();
  } else if (!m_indices.empty()) {
    score_block();
  }
}

void BlockScan::score_block() {
  const size_t n = m_indices.size();
  const Rows rows = block_rows(m_rows.data(), m_indices.data());
  if (m_nq <= k_fused_queries) {
    select_fused(rows, 0, n, m_top);
  } else {
    score_sgemm(rows, 0, n);
  }
  m_indices.clear();
}

BlockScan::Rows BlockScan::block_rows(const float* rows, const int64_t* indices) const {
  return Rows{reinterpret_cast<const std::byte*>(rows), m_dim * sizeof(float), nullptr, indices};
}

void BlockScan::scan(const Rows& rows, size_t n) {
  flush();
  if (m_nq <= k_fused_queries) {
    scan_split(rows, n);
  } else if (rows.slots != nullptr) {  // sgemm needs a constant stride: gather into blocks
    for (size_t p = 0; p < n; ++p) {
      std::memcpy(next_row(rows.index(p)), rows.row(p), m_dim * sizeof(float));
    }
  } else {
    for (size_t begin = 0; begin < n; begin += k_block_rows) {
      score_sgemm(rows, begin, std::min(n, begin + k_block_rows));
    }
  }
}

// Two threads, each into TopKs of its own: the second takes the last block, then both claim
// the other blocks in order (a thread the scheduler delays leaves its share to the other);
// the second's kept rows are then offered to m_top. TopK keeps the k best under one strict
// order (score, then index; scores are finite), so the merge keeps the rows and ties a single
// pass would, however the blocks were shared.
void BlockScan::scan_split(const Rows& rows, size_t n) {
  if (n < 2 * k_block_rows || k_cores < 2 || m_nq == 0 || m_k == 0) {
    select_fused(rows, 0, n, m_top);
    return;
  }
  std::vector<TopK> other_top;
  other_top.reserve(m_nq);
  for (size_t q = 0; q < m_nq; ++q) {
    other_top.emplace_back(m_metric, m_k);
  }
  const size_t blocks = (n + k_block_rows - 1) / k_block_rows;
  std::atomic<size_t> next{0};
  auto claim = [&](std::vector<TopK>& tops) {
    for (size_t b = next.fetch_add(1); b + 1 < blocks; b = next.fetch_add(1)) {
      select_fused(rows, b * k_block_rows, (b + 1) * k_block_rows, tops);
    }
  };
  on_two_threads(
      [&] {
        select_fused(rows, (blocks - 1) * k_block_rows, n, other_top);
        claim(other_top);
      },
      [&] { claim(m_top); });
  for (size_t q = 0; q < m_nq; ++q) {
    for (const auto& e : other_top[q].take_sorted()) {
      m_top[q].offer(e.score, e.index, e.slot);
    }
  }
}

// For each (query, row): a float32 product p from sgemm with |p - q.r| <= gamma |q| |r|
// (any summation order, FMA or not: gamma = dim * 2^-24 / (1 - dim * 2^-24); we use twice
// that, plus slack for the double arithmetic; plus underflow_of(dim) for products below
// float's normal range, which once let a row of 1e-22 values be skipped wrongly). A row is skipped only when its
// approximate score, moved by that margin in its favour, is still strictly worse than the query's k-th exact score:
// then its exact score is too, and TopK would refuse it. Anything not finite (overflow, NaN rows, infinite norms) is
// rescored.
void BlockScan::score_sgemm(const Rows& rows, size_t begin, size_t end) {
  const size_t n = end - begin;
  const size_t dim = m_dim;
  m_products.resize(m_nq * n);
  if (m_nq > 0 && n > 0 && dim > 0) {
    sgemm()(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m_nq), static_cast<int>(n), static_cast<int>(dim),
            1.0f, m_queries.data(), static_cast<int>(dim), rows.row(begin),
            static_cast<int>(rows.stride / sizeof(float)), 0.0f, m_products.data(), static_cast<int>(n));
  } else {
    std::fill(m_products.begin(), m_products.end(), 0.0f);
  }
  m_row_norms.resize(n);
  for (size_t r = 0; r < n; ++r) {
    m_row_norms[r] = norm_of(rows.row(begin + r), dim);
  }
  // The selection is a pass over nq x n products: split the queries across two threads
  // when there are enough of them (each query's TopK is its own; rows are only read).
  if (m_nq >= 64) {
    on_two_threads([&] { select(rows, begin, end, m_nq / 2, m_nq); }, [&] { select(rows, begin, end, 0, m_nq / 2); });
  } else {
    select(rows, begin, end, 0, m_nq);
  }
}

void BlockScan::select_fused(const Rows& rows, size_t begin, size_t end, std::vector<TopK>& tops) const {
  const size_t dim = m_dim;
  const double gamma = gamma_of(dim);
  const double underflow = underflow_of(dim);
  for (size_t r = begin; r < end; ++r) {
    const float* row = rows.row(r);
    const double sq = lane_dot(row, row, dim);
    for (size_t q = 0; q < m_nq; ++q) {
      const float* qv = m_queries.data() + q * dim;
      TopK& top = tops[q];
      const TopK::Entry* worst = top.worst();
      if (worst != nullptr &&
          fused_skip(m_metric, lane_dot(qv, row, dim), sq, m_query_norms[q], worst->score, gamma, underflow)) {
        continue;
      }
      top.offer(exact_score(m_metric, qv, row, dim), rows.index(r), 0);
    }
  }
}

void BlockScan::select(const Rows& rows, size_t begin, size_t end, size_t q_begin, size_t q_end) {
  const size_t n = end - begin;
  const size_t dim = m_dim;
  const double gamma = gamma_of(dim);
  const double underflow = underflow_of(dim);
  for (size_t q = q_begin; q < q_end; ++q) {
    TopK& top = m_top[q];
    const float* qv = m_queries.data() + q * dim;
    const double qn = m_query_norms[q];
    const float* prod = m_products.data() + q * n;
    for (size_t r = 0; r < n; ++r) {
      const TopK::Entry* worst = top.worst();
      if (worst != nullptr) {
        const double rn = m_row_norms[r];
        const double p = prod[r];
        const double bound = gamma * qn * rn + underflow;  // on |p - q.r|
        double best_case = 0;                              // approximate score moved by the margin in its favour
        double limit = worst->score;
        switch (m_metric) {
          case Metric::dot:
            best_case = p + bound;
            break;
          case Metric::cosine:
            best_case = (qn == 0 || rn == 0) ? 0 : p / (qn * rn) + gamma;
            break;
          case Metric::euclidean:
            // Squared distance, lowest case; compared with the squared k-th distance.
            best_case = qn * qn + rn * rn - 2 * p - 2 * bound - 1e-12 * (qn * qn + rn * rn);
            limit = limit * limit * (1 + 1e-12);
            break;
        }
        if (std::isfinite(best_case) && std::isfinite(limit) && std::isfinite(bound) &&
            ranks_before(m_metric, limit, best_case)) {
          continue;
        }
      }
      top.offer(exact_score(m_metric, qv, rows.row(begin + r), dim), rows.index(begin + r), 0);
    }
  }
}

std::vector<std::vector<TopK::Entry>> BlockScan::finish() {
  flush();
  std::vector<std::vector<TopK::Entry>> out;
  out.reserve(m_nq);
  for (auto& top : m_top) {
    out.push_back(top.take_sorted());
  }
  return out;
}

std::vector<std::vector<TopK::Entry>> block_topk(Metric metric, size_t dim, const float* queries, size_t nq,
                                                 const float* rows, const int64_t* indices, size_t n, size_t k) {
  BlockScan scan(metric, dim, queries, nq, k);
  for (size_t r = 0; r < n; ++r) {
    std::memcpy(scan.next_row(indices[r]), rows + r * dim, dim * sizeof(float));
  }
  return scan.finish();
}

}  // namespace vstash::backends
