// SPDX-License-Identifier: MIT
// The prefetching data loader: a batch plan computed up front, worker threads that fill an
// ordered ring of slots, and a consumer that takes the slots in order.
#include "workflows/training/dataloader.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

#include "src/errors.hpp"
#include "workflows/training/batchmemory.hpp"

namespace vstash::training {

using backends::Backend;
using backends::DatasetInfo;
using backends::RowBatch;

namespace {

// The default queue of a loader reading through a SampleReader (open_reader()).
constexpr size_t k_reader_queue_bytes = size_t{8} << 20;
constexpr int64_t k_reader_queue_batches = 32;

DatasetInfo require_dataset(Backend& backend, const std::string& dataset) {
  auto info = backend.dataset_info(dataset);
  if (!info) {
    throw NotFoundError(fmt::format("dataset \"{}\" does not exist", dataset));
  }
  return *info;
}

void check_count(const std::string& dataset, const RowBatch& batch, int64_t expected, int64_t where) {
  if (static_cast<int64_t>(batch.size()) != expected) {
    throw ConflictError(
        fmt::format("dataset \"{}\": expected {} rows at batch {}, the store returned {} "
                    "(rows deleted while loading?)",
                    dataset, expected, where, batch.size()));
  }
}

// A loaded batch (or the exception loading it raised) waiting in the ring for the consumer.
struct Slot {
  int64_t index = -1;  // which batch the slot holds; -1 while empty
  std::optional<RowBatch> batch;
  std::exception_ptr error;
};

class ThreadedLoader final : public DataLoader {
 public:
  ThreadedLoader(Backend& backend, std::string dataset, const LoaderOptions& options)
      : m_backend(backend), m_name(std::move(dataset)), m_options(options) {
    validate();
    m_info = require_dataset(m_backend, m_name);
    const ShardSpec shard{m_options.rank, m_options.world_size, m_options.pad_shards};
    std::optional<std::vector<int64_t>> selection;
    if (m_options.selection) {
      selection = *m_options.selection;
    }
    m_plan.emplace(m_info.rows, std::move(selection),
                   PlanSpec{m_options.shuffle, m_options.seed, m_options.epoch, shard, m_options.order,
                            m_options.batch_size, m_options.drop_last});
    // Unshuffled, unsharded epochs are one contiguous range: read_rows, no position list.
    m_contiguous = m_plan->contiguous();
    m_rows = m_plan->rows();
    m_batches = m_plan->batches();
    if (m_options.start_position > m_batches) {
      throw UsageError(fmt::format("dataset \"{}\": resume position {} is beyond the epoch's {} batches", m_name,
                                   m_options.start_position, m_batches));
    }
    m_next_take = m_next_fetch = m_options.start_position;
    m_depth = m_options.prefetch > 0 ? m_options.prefetch : 2 * std::max(1, m_options.num_workers);
    open_reader();
    keep_memory();
    start_workers();
  }

  ~ThreadedLoader() override { stop(); }
  ThreadedLoader(const ThreadedLoader&) = delete;
  ThreadedLoader& operator=(const ThreadedLoader&) = delete;

  std::optional<RowBatch> next() override {
    if (m_failure) {
      std::rethrow_exception(m_failure);
    }
    if (m_next_take >= m_batches) {
      return std::nullopt;
    }
    if (m_threads.empty()) {
      try {
        RowBatch batch = load(m_backend, m_next_take, m_positions);
        ++m_next_take;
        return batch;
      } catch (...) {
        m_failure = std::current_exception();
        throw;
      }
    }
    Slot slot;
    bool notify = false;
    {
      std::unique_lock lock(m_mutex);
      Slot& s = m_slots[static_cast<size_t>(m_next_take % m_depth)];
      m_ready.wait(lock, [&] { return s.index == m_next_take; });
      slot = std::move(s);
      s = Slot{};
      ++m_next_take;
      --m_buffered;
      // A worker waits for room for a whole run (work()): wake one only once there is.
      notify = m_next_take + m_depth - m_next_fetch >= std::min(m_run, m_batches - m_next_fetch);
    }
    if (notify) {
      m_space.notify_all();
    }
    if (slot.error) {
      m_failure = slot.error;
      stop();  // nothing after a failed batch will be delivered
      std::rethrow_exception(m_failure);
    }
    return std::move(slot.batch);
  }

  bool wait_ready(std::chrono::milliseconds timeout) override {
    if (m_failure || m_next_take >= m_batches) {
      return true;
    }
    if (m_threads.empty()) {
      return false;
    }
    std::unique_lock lock(m_mutex);
    const Slot& s = m_slots[static_cast<size_t>(m_next_take % m_depth)];
    return m_ready.wait_for(lock, timeout, [&] { return s.index == m_next_take; });
  }

  void recycle(RowBatch&& batch) override {
    std::lock_guard lock(m_spare_mutex);
    if (m_reader && !batch.data.is_view() && static_cast<int64_t>(m_spare.size()) < m_depth + 2) {
      m_spare.push_back(std::move(batch));
    }
  }

  int64_t position() const override { return m_next_take; }
  int64_t num_batches() const override { return m_batches; }
  int64_t shard_rows() const override { return m_rows; }
  const DatasetInfo& dataset() const override { return m_info; }
  const LoaderOptions& options() const override { return m_options; }
  int64_t depth() const override { return m_depth; }
  int64_t max_buffered() const override {
    std::lock_guard lock(m_mutex);
    return m_max_buffered;
  }

 private:
  void validate() const {
    if (m_options.batch_size < 1) {
      throw UsageError(fmt::format("batch size {} must be at least 1", m_options.batch_size));
    }
    if (m_options.num_workers < 0) {
      throw UsageError(fmt::format("worker count {} must not be negative", m_options.num_workers));
    }
    if (m_options.start_position < 0) {
      throw UsageError(fmt::format("resume position {} must not be negative", m_options.start_position));
    }
    if (m_options.epoch < 0) {
      throw UsageError(fmt::format("epoch {} must not be negative", m_options.epoch));
    }
    validate_shard({m_options.rank, m_options.world_size, m_options.pad_shards});
  }

  // Samples only, shuffled or selected, no cache: the store's SampleReader if it has one and
  // its snapshot has the rows the plan was made for (else batches come from read_samples).
  void open_reader() {
    if (!m_options.samples_only || m_options.cache || m_contiguous || m_next_fetch >= m_batches) {
      return;
    }
    m_reader = m_backend.sample_reader(m_name);
    if (m_reader && m_reader->rows() != m_info.rows) {
      m_reader.reset();
    }
    if (m_reader && m_options.gather_inline) {
      m_options.num_workers = 0;
    }
    // A gather from the reader takes microseconds and a handoff between threads about as
    // long: the default queue holds up to k_reader_queue_bytes (at least its usual depth),
    // which the workers fill in runs of depth / workers batches.
    if (m_reader && m_options.num_workers > 0 && m_options.prefetch == 0) {
      const auto fit = static_cast<int64_t>(k_reader_queue_bytes / std::max<size_t>(batch_bytes(), 1));
      m_depth = std::max(m_depth, std::min(fit, k_reader_queue_batches));
      m_run = std::max<int64_t>(1, m_depth / m_options.num_workers);
    }
  }

  size_t batch_bytes() const {
    const auto& spec = m_info.spec;
    const auto row =
        static_cast<size_t>(spec.dimension()) * dtype_size(spec.dtype) +
        (spec.label_dtype ? static_cast<size_t>(shape_product(spec.label_shape)) * dtype_size(*spec.label_dtype) : 0);
    return row * static_cast<size_t>(std::min(m_options.batch_size, std::max<int64_t>(m_rows, 1)));
  }

  // The batches in flight (the ring, the caller's, the one loading, each with its store's
  // replies) reuse the pages of those freed before them (batchmemory.hpp).
  void keep_memory() const {
    const size_t batch = batch_bytes();
    keep_batch_memory(batch, 2 * batch * static_cast<size_t>(m_depth + 2));
  }

  void start_workers() {
    if (m_options.num_workers == 0 || m_next_fetch >= m_batches) {
      return;
    }
    m_slots.resize(static_cast<size_t>(m_depth));
    // Connections are opened here, in the caller's thread, so a failure to connect is thrown
    // by create_data_loader rather than surfacing later as a batch error.
    if (m_options.connect && !m_reader) {
      for (int i = 0; i < m_options.num_workers; ++i) {
        m_connections.push_back(m_options.connect());
      }
    }
    m_threads.reserve(static_cast<size_t>(m_options.num_workers));
    for (int i = 0; i < m_options.num_workers; ++i) {
      Backend* own = m_connections.empty() ? nullptr : m_connections[static_cast<size_t>(i)].get();
      m_threads.emplace_back([this, own] { work(own); });
    }
  }

  void stop() {
    {
      std::lock_guard lock(m_mutex);
      m_stop = true;
    }
    m_space.notify_all();
    for (auto& t : m_threads) {
      if (t.joinable()) {
        t.join();
      }
    }
  }

  // Claims batches while the ring has room for them (the memory bound): one at a time, or
  // runs of m_run consecutive batches, loaded and then handed over together, so that a
  // consumer faster than the loads is woken once per run.
  void work(Backend* own) {
    std::vector<int64_t> positions;
    std::vector<Slot> loaded;
    std::unique_lock lock(m_mutex);
    for (;;) {
      m_space.wait(lock, [&] {
        return m_stop || m_next_fetch >= m_batches ||
               m_next_fetch + std::min(m_run, m_batches - m_next_fetch) <= m_next_take + m_depth;
      });
      if (m_stop || m_next_fetch >= m_batches) {
        return;
      }
      const int64_t first = m_next_fetch;
      const int64_t run = std::min(m_run, m_batches - first);
      m_next_fetch += run;
      m_buffered += run;
      m_max_buffered = std::max(m_max_buffered, m_buffered);
      lock.unlock();
      loaded.clear();
      for (int64_t index = first; index < first + run; ++index) {
        loaded.push_back(load_slot(own, index, positions));
      }
      lock.lock();
      for (auto& slot : loaded) {
        m_slots[static_cast<size_t>(slot.index % m_depth)] = std::move(slot);
      }
      m_ready.notify_all();
    }
  }

  Slot load_slot(Backend* own, int64_t index, std::vector<int64_t>& positions) {
    Slot slot;
    slot.index = index;
    try {
      if (own || m_reader) {  // a SampleReader gathers on any number of threads
        slot.batch = load(own ? *own : m_backend, index, positions);
      } else {
        std::lock_guard turn(m_backend_turn);
        slot.batch = load(m_backend, index, positions);
      }
    } catch (...) {
      slot.error = std::current_exception();
    }
    return slot;
  }

  // A spare batch of n rows (recycle()), or a new one.
  RowBatch spare(int64_t n) const {
    RowBatch b;
    {
      std::lock_guard lock(m_spare_mutex);
      if (!m_spare.empty()) {
        b = std::move(m_spare.back());
        m_spare.pop_back();
      }
    }
    const auto& spec = m_info.spec;
    const auto rows = static_cast<size_t>(n);
    const bool fits = b.ids.size() == rows && holds(b.data, spec.dtype, spec.row_shape, n) &&
                      b.labels.has_value() == spec.label_dtype.has_value() &&
                      (!b.labels || holds(*b.labels, *spec.label_dtype, spec.label_shape, n));
    if (!fits) {
      b = RowBatch{};
      b.ids.resize(rows);
      b.data = Array(spec.dtype, rows_of(spec.row_shape, n));
      if (spec.label_dtype) {
        b.labels = Array(*spec.label_dtype, rows_of(spec.label_shape, n));
      }
    }
    return b;
  }

  // a is an owned array of n rows of row_shape.
  static bool holds(const Array& a, DType dtype, const Shape& row_shape, int64_t n) {
    const Shape& s = a.shape();
    return !a.is_view() && a.dtype() == dtype && s.size() == row_shape.size() + 1 && s[0] == n &&
           std::equal(row_shape.begin(), row_shape.end(), s.begin() + 1);
  }

  static Shape rows_of(const Shape& row_shape, int64_t n) {
    Shape shape{n};
    shape.insert(shape.end(), row_shape.begin(), row_shape.end());
    return shape;
  }

  // positions: the caller's buffer, reused from batch to batch.
  RowBatch load(Backend& backend, int64_t index, std::vector<int64_t>& positions) const {
    if (m_reader) {
      m_plan->batch_into(index, positions);
      RowBatch batch = spare(static_cast<int64_t>(positions.size()));
      m_reader->gather(positions, batch.data.data(), batch.labels ? batch.labels->data() : nullptr);
      return batch;
    }
    const int64_t begin = m_plan->batch_begin(index);
    if (m_contiguous) {
      positions.resize(static_cast<size_t>(std::min(m_options.batch_size, m_rows - begin)));
      std::iota(positions.begin(), positions.end(), begin);
    } else {
      positions = m_plan->batch(index);
    }
    const auto count = static_cast<int64_t>(positions.size());
    if (m_options.cache) {
      if (auto hit = m_options.cache->get(m_info, positions)) {
        return std::move(*hit);
      }
    }
    RowBatch batch = m_contiguous                                 ? backend.read_rows(m_name, begin, count)
                     : m_options.samples_only && !m_options.cache ? backend.read_samples(m_name, positions)
                                                                  : backend.read_positions(m_name, positions);
    check_count(m_name, batch, count, index);
    if (m_options.cache) {
      m_options.cache->put(m_info, positions, batch);
    }
    return batch;
  }

  Backend& m_backend;
  std::string m_name;
  LoaderOptions m_options;
  DatasetInfo m_info;
  bool m_contiguous = false;
  std::optional<EpochPlan> m_plan;  // which positions each batch holds
  int64_t m_rows = 0;
  int64_t m_batches = 0;
  int64_t m_depth = 1;
  int64_t m_run = 1;                                 // batches a worker claims at a time (work())
  std::exception_ptr m_failure;                      // consumer thread only
  std::vector<int64_t> m_positions;                  // next()'s positions with no workers
  std::unique_ptr<backends::SampleReader> m_reader;  // see open_reader()
  mutable std::mutex m_spare_mutex;
  mutable std::vector<RowBatch> m_spare;  // recycled batches

  mutable std::mutex m_mutex;  // guards everything below except the threads themselves
  std::condition_variable m_ready;
  std::condition_variable m_space;
  std::vector<Slot> m_slots;
  int64_t m_next_take = 0;
  int64_t m_next_fetch = 0;
  int64_t m_buffered = 0;
  int64_t m_max_buffered = 0;
  bool m_stop = false;

  std::mutex m_backend_turn;  // serialises calls on the shared backend
  std::vector<std::unique_ptr<Backend>> m_connections;
  std::vector<std::thread> m_threads;
};

}  // namespace

std::unique_ptr<DataLoader> create_data_loader(Backend& backend, const std::string& dataset,
                                               const LoaderOptions& options) {
  return std::make_unique<ThreadedLoader>(backend, dataset, options);
}

std::unique_ptr<DataLoader> create_data_loader(Backend& backend, const std::string& dataset, int64_t batch_size,
                                               bool shuffle, int num_workers) {
  LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = shuffle;
  options.num_workers = num_workers;
  return create_data_loader(backend, dataset, options);
}

RowBatch load_training_batch(Backend& backend, const std::string& dataset, int64_t batch_size, bool shuffle,
                             int64_t offset, uint64_t seed, int64_t epoch) {
  if (batch_size < 1) {
    throw UsageError(fmt::format("batch size {} must be at least 1", batch_size));
  }
  if (offset < 0) {
    throw UsageError(fmt::format("offset {} must not be negative", offset));
  }
  if (!shuffle) {
    return backend.read_rows(dataset, offset, batch_size);
  }
  const DatasetInfo info = require_dataset(backend, dataset);
  const EpochPlan plan(info.rows, std::nullopt, PlanSpec{true, seed, epoch, {}, OrderKind::strided, batch_size, false});
  const auto positions = plan.entries(offset, batch_size);
  RowBatch batch = backend.read_positions(dataset, positions);
  check_count(dataset, batch, static_cast<int64_t>(positions.size()), offset / batch_size);
  return batch;
}

}  // namespace vstash::training
