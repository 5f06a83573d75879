// SPDX-License-Identifier: MIT
#include "backends/common/blockscan.hpp"

#include <cblas.h>
#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <thread>

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

}  // namespace

BlockScan::BlockScan(Metric metric, size_t dim, const float* queries, size_t nq, size_t k)
    : m_metric(metric), m_dim(dim), m_nq(nq), m_queries(queries, queries + nq * dim) {
  m_query_norms.reserve(nq);
  m_top.reserve(nq);
  for (size_t q = 0; q < nq; ++q) {
    m_query_norms.push_back(norm_of(queries + q * dim, dim));
    m_top.emplace_back(metric, k);
  }
  m_rows.reserve(k_block_rows * dim);
  m_indices.reserve(k_block_rows);
}

float* BlockScan::next_row(int64_t index) {
  if (m_indices.size() == k_block_rows) {
    score_block();
  }
  m_indices.push_back(index);
  m_rows.resize(m_indices.size() * m_dim);
  return m_rows.data() + (m_indices.size() - 1) * m_dim;
}

void BlockScan::flush() {
  if (!m_indices.empty()) {
    score_block();
  }
}

// For each (query, row): a float32 product p from sgemm with |p - q.r| <= gamma |q| |r|
// (any summation order, FMA or not: gamma = dim * 2^-24 / (1 - dim * 2^-24); we use twice
// that, plus slack for the double arithmetic). A row is skipped only when its approximate
// score, moved by that margin in its favour, is still strictly worse than the query's k-th
// exact score: then its exact score is too, and TopK would refuse it. Anything not finite
// (overflow, NaN rows, infinite norms) is rescored.
void BlockScan::score_block() {
  const size_t n = m_indices.size();
  const size_t dim = m_dim;
  m_products.resize(m_nq * n);
  if (m_nq > 0 && n > 0 && dim > 0) {
    sgemm()(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m_nq), static_cast<int>(n), static_cast<int>(dim),
            1.0f, m_queries.data(), static_cast<int>(dim), m_rows.data(), static_cast<int>(dim), 0.0f,
            m_products.data(), static_cast<int>(n));
  } else {
    std::fill(m_products.begin(), m_products.end(), 0.0f);
  }
  m_row_norms.resize(n);
  for (size_t r = 0; r < n; ++r) {
    m_row_norms[r] = norm_of(m_rows.data() + r * dim, dim);
  }
  // The selection is a pass over nq x n products: split the queries across two threads
  // when there are enough of them (each query's TopK is its own; rows are only read).
  if (m_nq >= 64) {
    std::exception_ptr failed;
    std::thread other([&] {
      try {
        select(m_nq / 2, m_nq, n);
      } catch (...) {
        failed = std::current_exception();
      }
    });
    try {
      select(0, m_nq / 2, n);
    } catch (...) {
      other.join();
      throw;
    }
    other.join();
    if (failed) {
      std::rethrow_exception(failed);
    }
  } else {
    select(0, m_nq, n);
  }
  m_indices.clear();
  m_rows.clear();
}

void BlockScan::select(size_t q_begin, size_t q_end, size_t n) {
  const size_t dim = m_dim;
  const double u = std::ldexp(1.0, -24) * static_cast<double>(dim + 2);
  const double gamma = 2.0 * u / (1.0 - u) + 1e-12;
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
        const double bound = gamma * qn * rn;  // on |p - q.r|
        double best_case = 0;                  // approximate score moved by the margin in its favour
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
      top.offer(exact_score(m_metric, qv, m_rows.data() + r * dim, dim), m_indices[r], 0);
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
