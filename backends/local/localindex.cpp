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
#include <sys/mman.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>
#include <span>
#include <thread>

#include "src/errors.hpp"
#include "src/io/mappedfile.hpp"

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
  // A loaded graph's file: its level 0 and link lists are read in place (map_graph below).
  std::shared_ptr<const io::MappedFile> file;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  // (row index, internal id) sorted, built on the first values() call.
  mutable std::once_flag by_label_once;
  mutable std::vector<std::pair<int64_t, hnswlib::tableint>> by_label;

  ~Impl() {
    if (file && graph) {
      // The mapping is not hnswlib's to free: its destructor then frees only what we gave it
      // (the link list table, the visited lists).
      graph->data_level0_memory_ = nullptr;
      graph->cur_element_count = 0;
    }
  }
  size_t stored_floats() const { return dim + (metric == Metric::cosine ? 1 : 0); }
};

LocalIndex::LocalIndex(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
LocalIndex::~LocalIndex() = default;

size_t LocalIndex::size() const { return m_impl->graph->cur_element_count; }

size_t LocalIndex::dimension() const { return m_impl->dim; }

int64_t LocalIndex::links_examined() const { return m_impl->graph->metric_distance_computations; }

std::vector<float> LocalIndex::values(int64_t index) const {
  const auto& g = *m_impl->graph;
  auto& by_label = m_impl->by_label;
  std::call_once(m_impl->by_label_once, [&] {
    by_label.resize(g.cur_element_count);
    for (hnswlib::tableint i = 0; i < g.cur_element_count; ++i) {
      by_label[i] = {static_cast<int64_t>(g.getExternalLabel(i)), i};
    }
    std::sort(by_label.begin(), by_label.end());
  });
  const auto it = std::lower_bound(by_label.begin(), by_label.end(), std::pair<int64_t, hnswlib::tableint>(index, 0));
  if (it == by_label.end() || it->first != index) {
    throw Error(fmt::format("hnsw index: no row at index {}", index));
  }
  const auto* row = reinterpret_cast<const float*>(g.getDataByInternalId(it->second));
  return {row, row + m_impl->dim};
}

namespace {

// The header hnswlib's saveIndex writes (hnswalg.h), field by field, 96 bytes.
struct FileHeader {
  size_t offset_level0 = 0, max_elements = 0, count = 0, element_bytes = 0, label_offset = 0, data_offset = 0;
  int max_level = 0;
  hnswlib::tableint entry = 0;
  size_t max_m = 0, max_m0 = 0, m = 0;
  double mult = 0;
  size_t ef_construction = 0;
};
constexpr size_t k_header_bytes = 96;

FileHeader read_header(const std::byte* p) {
  FileHeader h;
  auto take = [&p](auto& field) {
    std::memcpy(&field, p, sizeof field);
    p += sizeof field;
  };
  take(h.offset_level0), take(h.max_elements), take(h.count), take(h.element_bytes), take(h.label_offset);
  take(h.data_offset), take(h.max_level), take(h.entry), take(h.max_m), take(h.max_m0), take(h.m), take(h.mult);
  take(h.ef_construction);
  return h;
}

uint16_t list_count(const std::byte* list) {
  uint16_t n;  // hnswlib's getListCount: the low 16 bits of the list's first word
  std::memcpy(&n, list, sizeof n);
  return n;
}

// True if each of the count links at list + 4 is below `rows` and, if levels is given,
// names a node present at `level`.
bool links_valid(const std::byte* list, size_t count, size_t rows, const std::vector<int>* levels, int level) {
  for (size_t j = 0; j < count; ++j) {
    hnswlib::tableint id;
    std::memcpy(&id, list + 4 + j * sizeof id, sizeof id);
    if (id >= rows || (levels && (*levels)[id] < level)) {
      return false;
    }
  }
  return true;
}

// The upper levels' link lists of the file's nodes (after level 0: per node a 4-byte size,
// then that many bytes): their positions in the file (null for none) and each node's level.
// Error (via refuse) unless every list is whole, the file ends after the last and every
// link names a node present at its level.
void read_upper_levels(std::span<const std::byte> file, const FileHeader& h, std::vector<int>& levels, char** lists,
                       const std::function<Error(const char*)>& refuse) {
  const size_t list_bytes = h.max_m * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
  size_t at = k_header_bytes + h.count * h.element_bytes;
  for (size_t i = 0; i < h.count; ++i) {
    uint32_t bytes;
    if (file.size() - at < sizeof bytes) {
      throw refuse("truncated");
    }
    std::memcpy(&bytes, file.data() + at, sizeof bytes);
    at += sizeof bytes;
    if (bytes % list_bytes != 0 || bytes / list_bytes > static_cast<size_t>(h.max_level) || bytes > file.size() - at) {
      throw refuse("bad link list");
    }
    levels[i] = static_cast<int>(bytes / list_bytes);
    lists[i] = bytes == 0 ? nullptr : const_cast<char*>(reinterpret_cast<const char*>(file.data() + at));
    at += bytes;
  }
  if (at != file.size() || levels[h.entry] != h.max_level) {
    throw refuse(at != file.size() ? "trailing bytes" : "bad entry point");
  }
  for (size_t i = 0; i < h.count; ++i) {
    for (int level = 1; level <= levels[i]; ++level) {
      const auto* list = reinterpret_cast<const std::byte*>(lists[i]) + static_cast<size_t>(level - 1) * list_bytes;
      if (list_count(list) > h.max_m || !links_valid(list, list_count(list), h.count, &levels, level)) {
        throw refuse("bad link");
      }
    }
  }
}

// Checks level 0 (count nodes of element_bytes from level0: link list, values, label) on
// every core: each list within maxM0 links to existing nodes.
void check_level0(const std::byte* level0, const FileHeader& h, const std::function<Error(const char*)>& refuse) {
  constexpr size_t k_chunk = 65536;
  std::atomic<bool> ok{true};
  parallel_for((h.count + k_chunk - 1) / k_chunk, std::max(1u, std::thread::hardware_concurrency()), [&](size_t c) {
    for (size_t i = c * k_chunk; i < std::min(h.count, (c + 1) * k_chunk) && ok; ++i) {
      const std::byte* list = level0 + i * h.element_bytes;
      if (list_count(list) > h.max_m0 || !links_valid(list, list_count(list), h.count, nullptr, 0)) {
        ok = false;
      }
    }
  });
  if (!ok) {
    throw refuse("bad link");
  }
}

// Points a graph at impl.file (a file saveIndex wrote) instead of loading it: hnswlib's
// loadIndex reads the file twice element by element (a seek and a read per node), copies
// level 0, allocates each link list and fills a hash map of every label, which took most
// of a 1,000-query run on 1M rows. Here the file's pages are the graph (shared with the page
// cache and other processes), after checking every size and link so that a damaged file is
// an Error, not a wild read. The graph is read-only: nothing here inserts into it.
void map_graph(LocalIndex::Impl& impl, const std::string& path, int64_t rows) {
  const auto file = impl.file->bytes();
  const auto refuse = [&path](const char* what) {
    return Error(fmt::format("{}: hnsw index is damaged ({}); rebuild it with `vstash index`", path, what));
  };
  if (file.size() < k_header_bytes) {
    throw refuse("truncated");
  }
  const FileHeader h = read_header(file.data());
  const size_t data_bytes = impl.space->get_data_size();
  const size_t links0 = h.max_m0 * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
  if (h.count != static_cast<size_t>(rows) || h.element_bytes != links0 + data_bytes + sizeof(hnswlib::labeltype)) {
    throw Error(fmt::format("{}: hnsw index holds {} rows of {} bytes, expected {} of {}", path, h.count,
                            h.element_bytes - std::min(h.element_bytes, links0 + sizeof(hnswlib::labeltype)), rows,
                            data_bytes));
  }
  if (h.m < 2 || h.m > 10000 || h.max_m != h.m || h.max_m0 != 2 * h.m || h.offset_level0 != 0 ||
      h.data_offset != links0 || h.label_offset != links0 + data_bytes || h.max_level < 0 || h.max_level > 64 ||
      (h.count > 0 && h.entry >= h.count)) {
    throw refuse("bad header");
  }
  if (h.count > (file.size() - k_header_bytes) / h.element_bytes) {
    throw refuse("truncated");
  }
  std::vector<int> levels(h.count);
  std::unique_ptr<char*, decltype(&std::free)> lists(static_cast<char**>(std::malloc(sizeof(char*) * (h.count + 1))),
                                                     &std::free);
  if (!lists) {
    throw std::bad_alloc();
  }
  if (h.count > 0) {
    read_upper_levels(file, h, levels, lists.get(), refuse);
    check_level0(file.data() + k_header_bytes, h, refuse);
  }
  // A graph of one node as hnswlib allocates it, then given the file's (see ~Impl).
  impl.graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(impl.space.get(), 1, h.m, h.ef_construction);
  auto& g = *impl.graph;
  std::free(g.data_level0_memory_);
  g.data_level0_memory_ = const_cast<char*>(reinterpret_cast<const char*>(file.data() + k_header_bytes));
  std::free(g.linkLists_);
  g.linkLists_ = lists.release();
  auto pool = std::make_unique<hnswlib::VisitedListPool>(1, static_cast<int>(std::max<size_t>(h.count, 1)));
  delete g.visited_list_pool_;
  g.visited_list_pool_ = pool.release();
  g.max_elements_ = std::max<size_t>(h.count, 1);
  g.maxlevel_ = h.count > 0 ? h.max_level : -1;
  g.enterpoint_node_ = h.entry;
  g.cur_element_count = h.count;
}

}  // namespace

namespace {
// Inserts rows (stored form, width floats each) labelled by labels, on every core: hnswlib
// inserts concurrently (per-node locks); each thread takes the next row.
void add_rows(hnswlib::HierarchicalNSW<float>& g, const std::vector<float>& stored, const std::vector<int64_t>& labels,
              size_t width) {
  parallel_for(labels.size(), std::max(1u, std::thread::hardware_concurrency()),
               [&](size_t i) { g.addPoint(&stored[i * width], static_cast<hnswlib::labeltype>(labels[i])); });
}
}  // namespace

std::unique_ptr<LocalIndex> LocalIndex::build(Metric metric, size_t dim, size_t capacity, const HnswParams& params,
                                              const RowSource& source, const IndexProgressFn& progress,
                                              const HoldOut* hold_out) {
  auto impl = std::make_unique<Impl>();
  impl->metric = metric;
  impl->dim = dim;
  impl->space = make_space(metric, dim);
  impl->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(impl->space.get(), std::max<size_t>(capacity, 1),
                                                                  static_cast<size_t>(params.m),
                                                                  static_cast<size_t>(params.ef_construction), 100);
  auto& graph = *impl->graph;
  const size_t width = impl->stored_floats();
  std::vector<int64_t> indices, labels, held;
  std::vector<float> rows, stored, held_rows;
  size_t added = 0;
  while (const size_t n = source(indices, rows)) {
    if (added + n > capacity) {
      throw Error(fmt::format("hnsw index: the dataset grew past {} rows during the build", capacity));
    }
    labels.clear();
    stored.resize(n * width);
    for (size_t i = 0; i < n; ++i) {
      if (hold_out && held.size() < hold_out->positions.size() && hold_out->positions[held.size()] == added + i) {
        held.push_back(indices[i]);
        held_rows.insert(held_rows.end(), &rows[i * dim], &rows[i * dim] + dim);
        continue;
      }
      to_stored(metric, &rows[i * dim], dim, &stored[labels.size() * width]);
      labels.push_back(indices[i]);
    }
    add_rows(graph, stored, labels, width);
    added += n;
    if (progress) {
      progress({"building index: hnsw", static_cast<int64_t>(added), static_cast<int64_t>(capacity)});
    }
  }
  auto index = std::unique_ptr<LocalIndex>(new LocalIndex(std::move(impl)));
  if (hold_out) {
    hold_out->before(*index, held, held_rows);
    stored.resize(held.size() * width);
    for (size_t i = 0; i < held.size(); ++i) {
      to_stored(metric, &held_rows[i * dim], dim, &stored[i * width]);
    }
    add_rows(graph, stored, held, width);
  }
  return index;
}

std::unique_ptr<LocalIndex> LocalIndex::load(const std::string& path, Metric metric, size_t dim, int64_t rows) {
  auto impl = std::make_unique<Impl>();
  impl->metric = metric;
  impl->dim = dim;
  impl->space = make_space(metric, dim);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Error(fmt::format("{}: cannot read the hnsw index: {}", path, std::strerror(errno)));
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  impl->file = ec || bytes == 0 ? nullptr : io::MappedFile::map(fd, path, 0, bytes);
  ::close(fd);
  if (!impl->file) {
    throw Error(fmt::format("{}: cannot map the hnsw index", path));
  }
  // A search hops between random nodes: read ahead the whole file (the mapping asked for
  // sequential reads, which would drop pages behind the first pass).
  void* start = const_cast<std::byte*>(impl->file->bytes().data());
  ::madvise(start, bytes, MADV_NORMAL);
  ::madvise(start, bytes, MADV_WILLNEED);
  map_graph(*impl, path, rows);
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
                                            const std::function<bool(int64_t)>& keep, bool count) const {
  const auto& g = *m_impl->graph;
  const size_t dim = m_impl->dim;
  std::vector<float> stored(m_impl->stored_floats());
  to_stored(m_impl->metric, query, dim, stored.data());
  TopK top(m_impl->metric, k);
  if (g.cur_element_count == 0) {
    return top.take_sorted();
  }
  // searchKnn's descent through the upper levels, then its level-0 search, without its
  // shared hop counters (atomics every thread would write) or the label map: candidates
  // come back as internal ids, whose rows and labels are read in place.
  hnswlib::tableint at = g.enterpoint_node_;
  float best = g.fstdistfunc_(stored.data(), g.getDataByInternalId(at), g.dist_func_param_);
  long upper = 1;
  for (int level = g.maxlevel_; level > 0; --level) {
    for (bool moved = true; moved;) {
      moved = false;
      hnswlib::linklistsizeint* list = g.get_linklist(at, level);
      const auto* links = reinterpret_cast<const hnswlib::tableint*>(list + 1);
      upper += g.getListCount(list);
      for (size_t i = 0, n = g.getListCount(list); i < n; ++i) {
        const float d = g.fstdistfunc_(stored.data(), g.getDataByInternalId(links[i]), g.dist_func_param_);
        if (d < best) {
          best = d;
          at = links[i];
          moved = true;
        }
      }
    }
  }
  if (count) {
    g.metric_distance_computations += upper;
  }
  auto found = count ? g.searchBaseLayerST<false, true>(at, stored.data(), std::max(breadth, k))
                     : g.searchBaseLayerST<false, false>(at, stored.data(), std::max(breadth, k));
  for (; !found.empty(); found.pop()) {
    const hnswlib::tableint id = found.top().second;
    const auto index = static_cast<int64_t>(g.getExternalLabel(id));
    if (keep && !keep(index)) {
      continue;
    }
    const auto* row = reinterpret_cast<const float*>(g.getDataByInternalId(id));
    top.offer(exact_score(m_impl->metric, query, row, dim), index, id);
  }
  return top.take_sorted();
}

}  // namespace vstash::backends::local
