// SPDX-License-Identifier: MIT
#include "workflows/ingest/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "src/errors.hpp"

namespace vstash::ingest {

namespace {

struct Block {
  int64_t first = 0;  // file row
  backends::RowBatch rows;
};

// Everything the threads share, behind one mutex: the read-ahead queue, which blocks have
// committed, the watermark last written, and the first error.
class Shared {
 public:
  Shared(int64_t start, size_t queue_limit) : m_watermark(start), m_written_mark(start), m_limit(queue_limit) {}

  // Reader side: waits for room; false once the pipeline is stopping.
  bool push(std::unique_ptr<Block> block) {
    std::unique_lock lock(m_mutex);
    m_room.wait(lock, [&] { return m_stop || m_queue.size() < m_limit; });
    if (m_stop) {
      return false;
    }
    m_queue.push_back(std::move(block));
    m_ready.notify_one();
    return true;
  }
  void close() {
    std::lock_guard lock(m_mutex);
    m_closed = true;
    m_ready.notify_all();
  }
  // Writer side: the next block, or null when the queue is closed and empty or stopping.
  std::unique_ptr<Block> pop() {
    std::unique_lock lock(m_mutex);
    m_ready.wait(lock, [&] { return m_stop || m_closed || !m_queue.empty(); });
    if (m_stop || m_queue.empty()) {
      return nullptr;
    }
    std::unique_ptr<Block> b = std::move(m_queue.front());
    m_queue.pop_front();
    m_room.notify_one();
    return b;
  }

  // Records a committed block [first, end); returns the new watermark if it moved.
  std::optional<int64_t> committed(int64_t first, int64_t end) {
    std::lock_guard lock(m_mutex);
    m_rows_done += end - first;
    m_done.emplace(first, end);
    const int64_t before = m_watermark;
    while (!m_done.empty() && m_done.begin()->first == m_watermark) {
      m_watermark = m_done.begin()->second;
      m_done.erase(m_done.begin());
    }
    m_changed.notify_all();
    return m_watermark != before ? std::optional<int64_t>(m_watermark) : std::nullopt;
  }

  void fail(std::exception_ptr error) {
    std::lock_guard lock(m_mutex);
    if (!m_error) {
      m_error = std::move(error);
    }
    stop_locked();
  }
  void stop() {
    std::lock_guard lock(m_mutex);
    stop_locked();
  }
  std::exception_ptr error() {
    std::lock_guard lock(m_mutex);
    return m_error;
  }

  // Waits up to `period` for progress; returns rows committed so far.
  int64_t wait_progress(std::chrono::milliseconds period) {
    std::unique_lock lock(m_mutex);
    m_changed.wait_for(lock, period);
    return m_rows_done;
  }

  // Serialises watermark writes so that they reach the store in increasing order.
  std::mutex& mark_mutex() { return m_mark_mutex; }
  // True if `mark` is to be written (call under mark_mutex): the end of the file, or at
  // least `every` rows past the last watermark written.
  bool claim_mark(int64_t mark, int64_t end, int64_t every) {
    if (mark <= m_written_mark || (mark < end && mark - m_written_mark < every)) {
      return false;
    }
    m_written_mark = mark;
    return true;
  }

 private:
  void stop_locked() {
    m_stop = true;
    m_room.notify_all();
    m_ready.notify_all();
    m_changed.notify_all();
  }

  std::mutex m_mutex;
  std::condition_variable m_room, m_ready, m_changed;
  std::deque<std::unique_ptr<Block>> m_queue;
  std::set<std::pair<int64_t, int64_t>> m_done;  // committed blocks past the watermark
  int64_t m_watermark;
  int64_t m_rows_done = 0;
  bool m_stop = false;
  bool m_closed = false;
  std::exception_ptr m_error;
  std::mutex m_mark_mutex;
  int64_t m_written_mark;  // guarded by m_mark_mutex
  size_t m_limit;
};

// A watermark costs a metadata write (on Redis two round trips and a commit turn, 14% of a
// 100k x 128 ingest when written after every block), so it is written once it has moved
// k_mark_blocks blocks, and at the end: a resume re-sends at most that many committed
// blocks more, besides those that were in flight.
constexpr int64_t k_mark_blocks = 4;

void write_watermark(backends::Backend& backend, const IngestPlan& plan, Shared& shared, int64_t mark) {
  std::lock_guard lock(shared.mark_mutex());
  if (!shared.claim_mark(mark, plan.total, k_mark_blocks * plan.batch_size)) {
    return;  // too soon, or another writer already recorded a later point
  }
  backends::DatasetSpec spec = plan.spec;
  spec.metadata = {{plan.watermark_key, mark}};
  backend.create_dataset(spec);
}

}  // namespace

void run_pipeline(const ReadBlock& read, const IngestPlan& plan, const std::vector<backends::Backend*>& writers,
                  const std::function<void(int64_t)>& progress) {
  // Up to one queued block per writer, plus one being read and one in each writer: memory
  // stays at about 2 x writers + 1 blocks however large the file is.
  Shared shared(plan.start, std::max<size_t>(writers.size(), 1));
  std::thread reader([&] {
    try {
      for (int64_t first = plan.start; first < plan.total; first += plan.batch_size) {
        auto block = std::make_unique<Block>(Block{first, read(first, std::min(plan.batch_size, plan.total - first))});
        if (!shared.push(std::move(block))) {
          break;
        }
      }
    } catch (...) {
      shared.fail(std::current_exception());
    }
    shared.close();
  });
  std::vector<std::thread> threads;
  threads.reserve(writers.size());
  for (backends::Backend* backend : writers) {
    threads.emplace_back([&, backend] {
      try {
        while (auto block = shared.pop()) {
          const auto end = block->first + static_cast<int64_t>(block->rows.size());
          backend->write_rows(plan.spec.name, block->rows);
          if (auto mark = shared.committed(block->first, end)) {
            write_watermark(*backend, plan, shared, *mark);
          }
        }
      } catch (...) {
        shared.fail(std::current_exception());
      }
    });
  }
  // This thread reports progress (which answers Ctrl-C) until every row is committed or a
  // thread has failed; the others then stop after their current block.
  const int64_t goal = plan.total - plan.start;
  try {
    for (int64_t done = 0; done < goal && !shared.error();) {
      done = shared.wait_progress(std::chrono::milliseconds(100));
      progress(done);
    }
  } catch (...) {
    shared.fail(std::current_exception());
  }
  reader.join();
  for (auto& t : threads) {
    t.join();
  }
  if (auto error = shared.error()) {
    std::rethrow_exception(error);
  }
}

Slice slice_rows(int64_t total, const Shard& shard) {
  if (!shard.sharded()) {
    return {0, total};
  }
  // floor(r * N / W) without overflow for any N below 2^63 and W up to 2^20.
  auto bound = [&](int64_t r) {
    return total / shard.world_size * r + total % shard.world_size * r / shard.world_size;
  };
  return {bound(shard.rank), bound(shard.rank + 1)};
}

std::string watermark_key(const Shard& shard) {
  return shard.sharded() ? fmt::format("ingest_watermark_rank_{}", shard.rank) : "ingest_watermark";
}

std::string writer_name(const Shard& shard) { return shard.sharded() ? fmt::format("rank-{}", shard.rank) : ""; }

int64_t sharded_start(const backends::DatasetInfo& info, const Shard& shard, Slice slice, bool resume,
                      const std::string& what) {
  const auto& meta = info.spec.metadata;
  const std::string key = watermark_key(shard);
  const auto world = meta.is_object() ? meta.find(k_world_size_key) : meta.end();
  if (world == meta.end() || !world->is_number_integer()) {
    if (info.rows == 0) {
      return slice.begin;
    }
    throw ConflictError(fmt::format(
        "dataset \"{}\" already has {} rows not written by a sharded {}: --rank needs a new or empty dataset",
        info.spec.name, info.rows, what));
  }
  if (world->get<int64_t>() != shard.world_size) {
    throw ConflictError(fmt::format("--world-size {}: dataset \"{}\" is being loaded with --world-size {}",
                                    shard.world_size, info.spec.name, world->get<int64_t>()));
  }
  if (!meta.contains(key)) {
    return slice.begin;
  }
  if (!resume) {
    throw ConflictError(fmt::format("dataset \"{}\": {} rank {} of {} already started: pass --resume to finish it",
                                    info.spec.name, what, shard.rank, shard.world_size));
  }
  const int64_t mark = meta[key].is_number_integer() ? meta[key].get<int64_t>() : slice.begin;
  return std::clamp(mark, slice.begin, slice.end);
}

int64_t default_block_rows(const backends::DatasetSpec& spec) {
  constexpr int64_t k_default_rows = 10240;
  constexpr int64_t k_chunk_multiple = 256;
  constexpr int64_t k_block_bytes = int64_t{16} << 20;
  int64_t row_bytes = static_cast<int64_t>(dtype_size(spec.dtype)) * spec.dimension();
  if (spec.label_dtype) {
    row_bytes += static_cast<int64_t>(dtype_size(*spec.label_dtype)) * shape_product(spec.label_shape);
  }
  const int64_t rows = std::clamp<int64_t>(k_block_bytes / std::max<int64_t>(row_bytes, 1), 1, k_default_rows);
  return rows >= k_chunk_multiple ? rows / k_chunk_multiple * k_chunk_multiple : rows;
}

}  // namespace vstash::ingest
