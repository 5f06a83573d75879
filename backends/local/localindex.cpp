// SPDX-License-Identifier: MIT
// The local HNSW index (localindex.hpp).
//
// Graph distances: euclidean is the squared L2, dot 1 - a.b. Cosine stores each row as its
// dim values plus 1/|row| (0 for a zero row) and scores 1 - a.b/|a||b| from the stored
// reciprocal, so the graph ranks by cosine while the raw values stay in the
// index for rescoring. Every candidate is rescored with exact_score on those float32 values,
// which are the values the exact scan scores (rows converted to float32), so the index and
// the scan agree on every score.
// The graph itself; its record in the store, the cache of loaded graphs, queries through
// it and the build from the store's rows are in localindexstore.cpp.
#include "backends/local/localindex.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>

#include "src/errors.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wextra"
#include <hnswlib/hnswlib.h>
#pragma GCC diagnostic pop
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace vstash::backends::local {

namespace {

// Graph distances over dim floats (the parameter points at dim), best when smallest. The
// AVX2+FMA versions are chosen at run time: Debian builds for baseline x86-64, where hnswlib's
// own kernels are SSE only.
float sum_products(const float* a, const float* b, size_t dim) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= dim; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < dim; ++i) {
    s0 += a[i] * b[i];
  }
  return (s0 + s1) + (s2 + s3);
}

float sum_squares(const float* a, const float* b, size_t dim) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= dim; i += 4) {
    const float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1], d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < dim; ++i) {
    const float d = a[i] - b[i];
    s0 += d * d;
  }
  return (s0 + s1) + (s2 + s3);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float hsum(__m256 v) {
  const __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 y = _mm_add_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_add_ss(y, _mm_shuffle_ps(y, y, 1)));
}

__attribute__((target("avx2,fma"))) float sum_products_avx2(const float* a, const float* b, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < dim; ++i) {
    s += a[i] * b[i];
  }
  return s;
}

__attribute__((target("avx2,fma"))) float sum_squares_avx2(const float* a, const float* b, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
  }
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < dim; ++i) {
    const float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

const bool k_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
const bool k_avx2 = false;
#endif

template <bool Avx2>
float l2_distance(const void* a, const void* b, const void* param) {
  const size_t dim = *static_cast<const size_t*>(param);
  const auto* fa = static_cast<const float*>(a);
  const auto* fb = static_cast<const float*>(b);
  if constexpr (Avx2) {
    return sum_squares_avx2(fa, fb, dim);
  }
  return sum_squares(fa, fb, dim);
}

template <bool Avx2>
float dot_distance(const void* a, const void* b, const void* param) {
  const size_t dim = *static_cast<const size_t*>(param);
  const auto* fa = static_cast<const float*>(a);
  const auto* fb = static_cast<const float*>(b);
  if constexpr (Avx2) {
    return 1.0f - sum_products_avx2(fa, fb, dim);
  }
  return 1.0f - sum_products(fa, fb, dim);
}

// Rows stored with 1/|row| after their values (see the file comment).
template <bool Avx2>
float cosine_distance(const void* a, const void* b, const void* param) {
  const size_t dim = *static_cast<const size_t*>(param);
  const auto* fa = static_cast<const float*>(a);
  const auto* fb = static_cast<const float*>(b);
  return 1.0f - (1.0f - dot_distance<Avx2>(a, b, param)) * fa[dim] * fb[dim];
}

class Space final : public hnswlib::SpaceInterface<float> {
 public:
  Space(Metric metric, size_t dim) : m_dim(dim), m_floats(dim + (metric == Metric::cosine ? 1 : 0)) {
    switch (metric) {
      case Metric::euclidean:
        m_func = k_avx2 ? &l2_distance<true> : &l2_distance<false>;
        break;
      case Metric::dot:
        m_func = k_avx2 ? &dot_distance<true> : &dot_distance<false>;
        break;
      case Metric::cosine:
        m_func = k_avx2 ? &cosine_distance<true> : &cosine_distance<false>;
        break;
    }
  }
  size_t get_data_size() override { return m_floats * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return m_func; }
  void* get_dist_func_param() override { return &m_dim; }

 private:
  size_t m_dim;
  size_t m_floats;
  hnswlib::DISTFUNC<float> m_func = nullptr;
};

std::unique_ptr<hnswlib::SpaceInterface<float>> make_space(Metric metric, size_t dim) {
  return std::make_unique<Space>(metric, dim);
}

// The stored form of a vector (see the file comment): cosine appends 1/|v|.
void to_stored(Metric metric, const float* v, size_t dim, float* out) {
  std::copy(v, v + dim, out);
  if (metric == Metric::cosine) {
    double n = 0;
    for (size_t i = 0; i < dim; ++i) {
      n += static_cast<double>(v[i]) * v[i];
    }
    out[dim] = n > 0 ? static_cast<float>(1.0 / std::sqrt(n)) : 0.0f;
  }
}

}  // namespace

void parallel_for(size_t n, size_t threads, const std::function<void(size_t)>& item) {
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&] {
    try {
      for (size_t i = next++; i < n; i = next++) {
        item(i);
      }
    } catch (...) {
      std::lock_guard lock(failure_mutex);
      failure = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) {
    pool.emplace_back(work);
  }
  work();
  for (auto& t : pool) {
    t.join();
  }
  if (failure) {
    std::rethrow_exception(failure);
  }
}

struct LocalIndex::Impl {
  Metric metric;
  size_t dim;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;

  size_t stored_floats() const { return dim + (metric == Metric::cosine ? 1 : 0); }
};

LocalIndex::LocalIndex(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
LocalIndex::~LocalIndex() = default;

size_t LocalIndex::size() const { return m_impl->graph->cur_element_count; }

std::vector<float> LocalIndex::values(int64_t index) const {
  const auto& g = *m_impl->graph;
  const auto it = g.label_lookup_.find(static_cast<hnswlib::labeltype>(index));
  if (it == g.label_lookup_.end()) {
    throw Error(fmt::format("hnsw index: no row at index {}", index));
  }
  const auto* row = reinterpret_cast<const float*>(g.getDataByInternalId(it->second));
  return {row, row + m_impl->dim};
}

std::unique_ptr<LocalIndex> LocalIndex::build(Metric metric, size_t dim, size_t capacity, const HnswParams& params,
                                              const RowSource& source, const IndexProgressFn& progress) {
  auto impl = std::make_unique<Impl>();
  impl->metric = metric;
  impl->dim = dim;
  impl->space = make_space(metric, dim);
  impl->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(impl->space.get(), std::max<size_t>(capacity, 1),
                                                                  static_cast<size_t>(params.m),
                                                                  static_cast<size_t>(params.ef_construction), 100);
  const size_t width = impl->stored_floats();
  const size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<int64_t> indices;
  std::vector<float> rows;
  std::vector<float> stored;
  size_t added = 0;
  while (const size_t n = source(indices, rows)) {
    if (added + n > capacity) {
      throw Error(fmt::format("hnsw index: the dataset grew past {} rows during the build", capacity));
    }
    stored.resize(n * width);
    for (size_t i = 0; i < n; ++i) {
      to_stored(metric, &rows[i * dim], dim, &stored[i * width]);
    }
    // hnswlib inserts concurrently (per-node locks); each thread takes the next row.
    parallel_for(n, threads, [&](size_t i) {
      impl->graph->addPoint(&stored[i * width], static_cast<hnswlib::labeltype>(indices[i]));
    });
    added += n;
    if (progress) {
      progress({"building index: hnsw", static_cast<int64_t>(added), static_cast<int64_t>(capacity)});
    }
  }
  return std::unique_ptr<LocalIndex>(new LocalIndex(std::move(impl)));
}

std::unique_ptr<LocalIndex> LocalIndex::load(const std::string& path, Metric metric, size_t dim, int64_t rows) {
  auto impl = std::make_unique<Impl>();
  impl->metric = metric;
  impl->dim = dim;
  impl->space = make_space(metric, dim);
  // hnswlib trusts the file's header; the record's size check (find_index_record's caller)
  // and this read of the header keep a foreign file from allocating at will.
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  if (ec) {
    throw Error(fmt::format("{}: cannot read the hnsw index: {}", path, ec.message()));
  }
  const size_t element_bytes = impl->space->get_data_size();
  if (bytes < static_cast<uintmax_t>(rows) * element_bytes) {
    throw Error(fmt::format("{}: hnsw index is truncated ({} bytes for {} rows)", path, bytes, rows));
  }
  try {
    impl->graph =
        std::make_unique<hnswlib::HierarchicalNSW<float>>(impl->space.get(), path, false, static_cast<size_t>(rows));
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: cannot load the hnsw index: {}", path, e.what()));
  }
  if (impl->graph->cur_element_count != static_cast<size_t>(rows) || impl->graph->data_size_ != element_bytes) {
    throw Error(fmt::format("{}: hnsw index holds {} rows of {} bytes, expected {} of {}", path,
                            impl->graph->cur_element_count, impl->graph->data_size_, rows, element_bytes));
  }
  // Breadth is passed per search as k (searchKnn searches max(ef, k)), so the shared
  // setting stays at its minimum and concurrent searches need no lock.
  impl->graph->setEf(1);
  return std::unique_ptr<LocalIndex>(new LocalIndex(std::move(impl)));
}

int64_t LocalIndex::save(const std::string& path) const {
  const std::string tmp = fmt::format("{}.tmp{}", path, ::getpid());
  m_impl->graph->saveIndex(tmp);
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) {
    ::close(fd);
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(tmp, ec);
  if (!synced || ec || bytes == 0) {
    std::filesystem::remove(tmp, ec);
    throw Error(fmt::format("{}: cannot write the hnsw index", path));
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    throw Error(fmt::format("{}: cannot write the hnsw index: {}", path, ec.message()));
  }
  return static_cast<int64_t>(bytes);
}

std::vector<TopK::Entry> LocalIndex::search(const float* query, size_t k, size_t breadth,
                                            const std::function<bool(int64_t)>& keep) const {
  const auto& g = *m_impl->graph;
  const size_t dim = m_impl->dim;
  std::vector<float> stored(m_impl->stored_floats());
  to_stored(m_impl->metric, query, dim, stored.data());
  auto found = g.searchKnn(stored.data(), std::max(breadth, k));
  TopK top(m_impl->metric, k);
  for (; !found.empty(); found.pop()) {
    const auto index = static_cast<int64_t>(found.top().second);
    if (keep && !keep(index)) {
      continue;
    }
    const auto it = g.label_lookup_.find(found.top().second);
    const auto* row = reinterpret_cast<const float*>(g.getDataByInternalId(it->second));
    top.offer(exact_score(m_impl->metric, query, row, dim), index, 0);
  }
  return top.take_sorted();
}

}  // namespace vstash::backends::local
