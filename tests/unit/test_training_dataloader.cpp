// SPDX-License-Identifier: MIT
// The prefetching data loader against the local store: order, epochs, resume, shards,
// worker failures, early shutdown and the memory bound.
#include <doctest/doctest.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <numeric>
#include <set>
#include <thread>

#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/forwardingbackend.hpp"
#include "tests/testutil.hpp"
#include "workflows/training/dataloader.hpp"

using namespace vstash;
using namespace vstash::training;
using backends::Backend;
using backends::RowBatch;

namespace {

constexpr int64_t k_rows = 103;
constexpr int64_t k_dim = 4;

Profile local_profile(const std::filesystem::path& dir) {
  return Profile("t", "local", {{"path", (dir / "store.db").string()}}, "test");
}

// A local store holding k_rows rows whose first value and label are the row's position.
struct Store {
  std::filesystem::path dir = testutil::scratch_dir("loader");
  std::unique_ptr<Backend> backend = backends::create_backend(local_profile(dir));

  Store() {
    backends::DatasetSpec spec;
    spec.name = "train";
    spec.row_shape = {k_dim};
    spec.label_dtype = DType::i64;
    backend->create_dataset(spec);
    RowBatch batch;
    batch.data = testutil::random_f32(k_rows, k_dim, 11);
    Array labels(DType::i64, {k_rows});
    for (int64_t i = 0; i < k_rows; ++i) {
      batch.ids.push_back("row-" + std::to_string(i));
      batch.data.as<float>()[i * k_dim] = static_cast<float>(i);
      labels.as<int64_t>()[i] = i;
      batch.metadata.emplace_back(nullptr);
    }
    batch.labels = std::move(labels);
    backend->write_rows("train", batch);
  }
};

// Every batch's row positions, read back from the labels (and checked against the data).
std::vector<std::vector<int64_t>> drain(DataLoader& loader) {
  std::vector<std::vector<int64_t>> out;
  while (auto batch = loader.next()) {
    REQUIRE(batch->labels.has_value());
    std::vector<int64_t> rows;
    for (size_t i = 0; i < batch->size(); ++i) {
      const int64_t label = batch->labels->as<int64_t>()[i];
      CHECK(batch->data.as<float>()[i * k_dim] == static_cast<float>(label));
      CHECK(batch->ids[i] == "row-" + std::to_string(label));
      rows.push_back(label);
    }
    out.push_back(std::move(rows));
  }
  return out;
}

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> all;
  for (const auto& b : batches) {
    all.insert(all.end(), b.begin(), b.end());
  }
  return all;
}

bool covers_once(std::vector<int64_t> rows, int64_t n) {
  std::sort(rows.begin(), rows.end());
  std::vector<int64_t> expected(static_cast<size_t>(n));
  std::iota(expected.begin(), expected.end(), int64_t{0});
  return rows == expected;
}

LoaderOptions options_with(int workers, bool shuffle, int64_t epoch = 0) {
  LoaderOptions o;
  o.batch_size = 10;
  o.num_workers = workers;
  o.shuffle = shuffle;
  o.seed = 1234;
  o.epoch = epoch;
  return o;
}

// Forwards to another backend; hooks observe or fail the row reads.
class ProbeBackend final : public testutil::ForwardingBackend {
 public:
  explicit ProbeBackend(Backend& inner) : ForwardingBackend(inner) {}
  std::function<void(const std::vector<int64_t>&)> before_read;
  std::function<void()> after_read;

  RowBatch read_rows(const std::string& d, int64_t offset, int64_t count) override {
    std::vector<int64_t> positions(static_cast<size_t>(count));
    std::iota(positions.begin(), positions.end(), offset);
    return observed(positions, [&] { return m_inner.read_rows(d, offset, count); });
  }
  RowBatch read_positions(const std::string& d, const std::vector<int64_t>& p) override {
    return observed(p, [&] { return m_inner.read_positions(d, p); });
  }

 private:
  RowBatch observed(const std::vector<int64_t>& positions, const std::function<RowBatch()>& read) {
    if (before_read) {
      before_read(positions);
    }
    RowBatch batch = read();
    if (after_read) {
      after_read();
    }
    return batch;
  }
};

// Forwards the SampleReader too and counts the row reads, which it should make unnecessary.
class ReaderBackend final : public testutil::ForwardingBackend {
 public:
  explicit ReaderBackend(Backend& inner) : ForwardingBackend(inner) {}
  std::atomic<int> reads{0};
  RowBatch read_positions(const std::string& d, const std::vector<int64_t>& p) override {
    ++reads;
    return m_inner.read_positions(d, p);
  }
  RowBatch read_samples(const std::string& d, const std::vector<int64_t>& p) override {
    ++reads;
    return m_inner.read_samples(d, p);
  }
  std::unique_ptr<backends::SampleReader> sample_reader(const std::string& d) override {
    return m_inner.sample_reader(d);
  }
};

// Every batch's data bytes and labels, each batch handed back to the loader once read.
std::vector<std::pair<std::vector<std::byte>, std::vector<int64_t>>> drain_samples(DataLoader& loader) {
  std::vector<std::pair<std::vector<std::byte>, std::vector<int64_t>>> out;
  while (auto batch = loader.next()) {
    const auto bytes = batch->data.bytes();
    const auto* labels = batch->labels->as<int64_t>();
    out.emplace_back(std::vector<std::byte>(bytes.begin(), bytes.end()),
                     std::vector<int64_t>(labels, labels + batch->size()));
    loader.recycle(std::move(*batch));
  }
  return out;
}

template <class Pred>
bool eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

TEST_SUITE("training::DataLoader") {
  TEST_CASE("the batch sequence is the same for 0, 1 and 4 workers, shuffled or not") {
    Store store;
    for (bool shuffle : {false, true}) {
      CAPTURE(shuffle);
      auto reference = drain(*create_data_loader(*store.backend, "train", options_with(0, shuffle)));
      CHECK(reference.size() == 11);
      CHECK(reference.back().size() == 3);
      CHECK(covers_once(flatten(reference), k_rows));
      for (int workers : {1, 4}) {
        CAPTURE(workers);
        CHECK(drain(*create_data_loader(*store.backend, "train", options_with(workers, shuffle))) == reference);
      }
      // One named vector: begin() and end() of two separate temporaries would be undefined.
      const auto rows = flatten(reference);
      CHECK(std::is_sorted(rows.begin(), rows.end()) == !shuffle);
    }
  }

  TEST_CASE("two epochs differ in order and each covers every row once") {
    Store store;
    const auto e0 = flatten(drain(*create_data_loader(*store.backend, "train", options_with(2, true, 0))));
    const auto e1 = flatten(drain(*create_data_loader(*store.backend, "train", options_with(2, true, 1))));
    CHECK(covers_once(e0, k_rows));
    CHECK(covers_once(e1, k_rows));
    CHECK(e0 != e1);
    CHECK(e0 == epoch_order(k_rows, true, 1234, 0));
  }

  TEST_CASE("the same seed reproduces the order and another seed changes it") {
    Store store;
    auto o = options_with(3, true, 5);
    const auto a = drain(*create_data_loader(*store.backend, "train", o));
    CHECK(drain(*create_data_loader(*store.backend, "train", o)) == a);
    o.seed = 4321;
    CHECK(drain(*create_data_loader(*store.backend, "train", o)) != a);
  }

  TEST_CASE("drop_last drops the short final batch") {
    Store store;
    auto o = options_with(2, true);
    o.drop_last = true;
    auto loader = create_data_loader(*store.backend, "train", o);
    CHECK(loader->num_batches() == 10);
    const auto batches = drain(*loader);
    CHECK(batches.size() == 10);
    CHECK(std::all_of(batches.begin(), batches.end(), [](const auto& b) { return b.size() == 10; }));
    const auto order = epoch_order(k_rows, true, 1234, 0);
    CHECK(flatten(batches) == std::vector<int64_t>(order.begin(), order.begin() + 100));
  }

  TEST_CASE("resuming from (epoch, position) yields exactly the remaining batches") {
    Store store;
    for (int workers : {0, 2}) {
      auto o = options_with(workers, true, 3);
      const auto full = drain(*create_data_loader(*store.backend, "train", o));
      auto first = create_data_loader(*store.backend, "train", o);
      for (int i = 0; i < 4; ++i) {
        REQUIRE(first->next());
      }
      o.start_position = first->position();
      CHECK(o.start_position == 4);
      first.reset();
      auto resumed = create_data_loader(*store.backend, "train", o);
      CHECK(drain(*resumed) == std::vector<std::vector<int64_t>>(full.begin() + 4, full.end()));
      CHECK(resumed->position() == resumed->num_batches());
    }
    auto o = options_with(1, true);
    o.start_position = 12;
    CHECK_THROWS_AS(create_data_loader(*store.backend, "train", o), UsageError);
  }

  TEST_CASE("sharded loaders together read each row once per epoch") {
    Store store;
    for (int64_t w : {1, 3, 4}) {
      std::vector<int64_t> all;
      for (int64_t r = 0; r < w; ++r) {
        auto o = options_with(2, true, 1);
        o.rank = r;
        o.world_size = w;
        const auto rows = flatten(drain(*create_data_loader(*store.backend, "train", o)));
        CHECK(static_cast<int64_t>(rows.size()) == k_rows / w + (r < k_rows % w ? 1 : 0));
        all.insert(all.end(), rows.begin(), rows.end());
      }
      CAPTURE(w);
      CHECK(covers_once(all, k_rows));
    }
  }

  TEST_CASE("an unshuffled shard strides over ascending positions") {
    Store store;
    auto o = options_with(0, false);
    o.world_size = 4;
    o.pad_shards = RemainderPolicy::pad;
    // 103 rows padded to 104: the one padded slot is order index 103, which belongs to rank
    // 103 % 4 = 3 and repeats order[0] = position 0 (DistributedSampler's indices[rank::W]).
    o.rank = 1;
    auto rows = flatten(drain(*create_data_loader(*store.backend, "train", o)));
    CHECK(rows.size() == 26);
    CHECK(rows.front() == 1);
    CHECK(rows[1] == 5);
    CHECK(rows.back() == 101);
    o.rank = 3;
    rows = flatten(drain(*create_data_loader(*store.backend, "train", o)));
    CHECK(rows.size() == 26);
    CHECK(rows.front() == 3);
    CHECK(rows[1] == 7);
    CHECK(rows[24] == 99);
    CHECK(rows.back() == 0);
  }

  TEST_CASE("load_training_batch walks the same permutation as the loader") {
    Store store;
    const auto batches = drain(*create_data_loader(*store.backend, "train", options_with(0, true)));
    for (size_t i = 0; i < batches.size(); ++i) {
      const RowBatch b = load_training_batch(*store.backend, "train", 10, true, static_cast<int64_t>(i) * 10, 1234);
      std::vector<int64_t> rows;
      for (size_t j = 0; j < b.size(); ++j) {
        rows.push_back(b.labels->as<int64_t>()[j]);
      }
      CHECK(rows == batches[i]);
    }
    CHECK(load_training_batch(*store.backend, "train", 10, true, 200, 1234).size() == 0);
    const RowBatch seq = load_training_batch(*store.backend, "train", 5, false, 20, 0);
    CHECK(seq.ids == std::vector<std::string>{"row-20", "row-21", "row-22", "row-23", "row-24"});
  }

  TEST_CASE("a samples-only loader gathers through the store's SampleReader: same batches, no read per batch") {
    Store store;
    // Not in order any more: a deleted row and an updated one (its record moves to a new slot).
    store.backend->delete_ids("train", {"row-7", "row-50"});
    Array moved = testutil::random_f32(1, k_dim, 5);
    store.backend->update_row("train", "row-20", moved, std::nullopt);
    for (int workers : {0, 3}) {
      CAPTURE(workers);
      auto o = options_with(workers, true);
      o.selection =
          std::make_shared<const std::vector<int64_t>>(std::vector<int64_t>{0, 2, 3, 5, 8, 13, 21, 34, 55, 89});
      for (bool selected : {false, true}) {
        auto so = selected ? o : options_with(workers, true);
        ReaderBackend reader(*store.backend);
        const auto reference = drain_samples(*create_data_loader(reader, "train", so));
        CHECK(reader.reads == static_cast<int>(reference.size()));
        so.samples_only = true;
        reader.reads = 0;
        auto loader = create_data_loader(reader, "train", so);
        CHECK(drain_samples(*loader) == reference);
        CHECK(reader.reads == 0);
        // Workers fill a deeper queue (32 batches of 240 bytes fit 8 MiB) in runs; never more.
        CHECK(loader->depth() == (workers == 0 ? 2 : 32));
        CHECK(loader->max_buffered() <= loader->depth());
      }
    }
    // The reader's snapshot: rows deleted after the loader was made are still delivered, and
    // a recycled batch's buffer carries the next batch.
    auto o = options_with(0, true);
    o.samples_only = true;
    auto loader = create_data_loader(*store.backend, "train", o);
    store.backend->delete_ids("train", {"row-0", "row-1", "row-2"});
    auto first = loader->next();
    const std::byte* buffer = first->data.data();
    std::vector<int64_t> labels(first->labels->as<int64_t>(), first->labels->as<int64_t>() + first->size());
    loader->recycle(std::move(*first));
    auto second = loader->next();
    CHECK(second->data.data() == buffer);
    labels.insert(labels.end(), second->labels->as<int64_t>(), second->labels->as<int64_t>() + second->size());
    while (auto batch = loader->next()) {
      labels.insert(labels.end(), batch->labels->as<int64_t>(), batch->labels->as<int64_t>() + batch->size());
    }
    std::sort(labels.begin(), labels.end());
    CHECK(labels.size() == k_rows - 2);
    CHECK(labels.front() == 0);
  }

  TEST_CASE("workers with their own connections give the same sequence") {
    Store store;
    auto o = options_with(3, true, 2);
    const auto reference = drain(*create_data_loader(*store.backend, "train", o));
    std::atomic<int> opened{0};
    o.connect = [&] {
      ++opened;
      return backends::create_backend(local_profile(store.dir));
    };
    CHECK(drain(*create_data_loader(*store.backend, "train", o)) == reference);
    CHECK(opened == 3);
  }

  TEST_CASE("a worker's exception reaches the consumer at its batch and stays") {
    Store store;
    for (int workers : {0, 1, 4}) {
      CAPTURE(workers);
      ProbeBackend probe(*store.backend);
      const auto order = epoch_order(k_rows, true, 1234, 0);
      const int64_t poisoned = order[35];  // in batch 3
      probe.before_read = [&](const std::vector<int64_t>& positions) {
        if (std::find(positions.begin(), positions.end(), poisoned) != positions.end()) {
          throw RetryableError("probe: connection reset");
        }
      };
      auto loader = create_data_loader(probe, "train", options_with(workers, true));
      for (int i = 0; i < 3; ++i) {
        CHECK(loader->next().has_value());
      }
      CHECK_THROWS_WITH_AS(loader->next(), "probe: connection reset", RetryableError);
      CHECK_THROWS_AS(loader->next(), RetryableError);
    }
  }

  TEST_CASE("destroying a loader early stops its workers cleanly") {
    Store store;
    ProbeBackend probe(*store.backend);
    std::atomic<int> reads{0};
    probe.after_read = [&] { ++reads; };
    { auto idle = create_data_loader(probe, "train", options_with(4, true)); }
    // The idle loader's workers may have loaded a few batches before it was destroyed; the
    // bound below is about the second loader only.
    reads = 0;
    {
      auto o = options_with(4, true);
      o.prefetch = 3;
      auto loader = create_data_loader(probe, "train", o);
      REQUIRE(loader->next());
      REQUIRE(eventually([&] { return reads >= 4; }));  // workers are blocked on a full queue
    }
    // One batch taken plus a full queue of three: the workers stopped at the bound and exited.
    CHECK(reads == 4);
  }

  TEST_CASE("the queue never holds more than its depth") {
    Store store;
    ProbeBackend probe(*store.backend);
    std::atomic<int64_t> loaded{0};
    std::atomic<int64_t> taken{0};
    std::atomic<int64_t> worst{0};
    probe.after_read = [&] {
      const int64_t held = ++loaded - taken;
      int64_t prev = worst;
      while (held > prev && !worst.compare_exchange_weak(prev, held)) {
      }
    };
    auto o = options_with(4, true);
    o.batch_size = 5;
    o.prefetch = 3;
    auto loader = create_data_loader(probe, "train", o);
    CHECK(loader->depth() == 3);
    // Nothing is taken yet: the workers fill the queue and must stop there.
    REQUIRE(eventually([&] { return loaded == 3; }));
    CHECK(loader->max_buffered() == 3);
    while (loader->next()) {
      ++taken;
    }
    CHECK(taken == 21);
    CHECK(loader->max_buffered() <= 3);
    // The consumer counts a batch after next() returned it; by then its slot may be refilled.
    CHECK(worst <= 4);
  }

  TEST_CASE("a batch cache serves repeated batches without backend reads and within its bytes") {
    Store store;
    ProbeBackend probe(*store.backend);
    std::atomic<int> reads{0};
    probe.after_read = [&] { ++reads; };
    for (bool shuffle : {false, true}) {
      CAPTURE(shuffle);
      reads = 0;
      auto o = options_with(2, shuffle, 1);
      const auto reference = drain(*create_data_loader(*store.backend, "train", o));
      o.cache = std::make_shared<BatchCache>(int64_t{1} << 20);
      CHECK(drain(*create_data_loader(probe, "train", o)) == reference);
      CHECK(reads == 11);
      // The same epoch again (a restarted or evaluation pass): every batch from memory.
      CHECK(drain(*create_data_loader(probe, "train", o)) == reference);
      CHECK(reads == 11);
      CHECK(o.cache->stats().hits == 11);
      // Another shuffled epoch has other batches: they miss.
      o.epoch = 2;
      drain(*create_data_loader(probe, "train", o));
      CHECK(reads == (shuffle ? 22 : 11));
    }
    // A cache smaller than the epoch holds only what fits and still gives the same batches.
    auto o = options_with(3, true, 0);
    const auto reference = drain(*create_data_loader(*store.backend, "train", o));
    o.cache = std::make_shared<BatchCache>(2000);
    CHECK(drain(*create_data_loader(probe, "train", o)) == reference);
    CHECK(drain(*create_data_loader(probe, "train", o)) == reference);
    CHECK(o.cache->stats().bytes <= 2000);
    CHECK(o.cache->stats().evictions > 0);
  }

  TEST_CASE("bad options and missing datasets are reported") {
    Store store;
    auto o = options_with(0, true);
    o.batch_size = 0;
    CHECK_THROWS_AS(create_data_loader(*store.backend, "train", o), UsageError);
    o = options_with(-1, true);
    CHECK_THROWS_AS(create_data_loader(*store.backend, "train", o), UsageError);
    o = options_with(1, true);
    o.rank = 2;
    o.world_size = 2;
    CHECK_THROWS_AS(create_data_loader(*store.backend, "train", o), UsageError);
    CHECK_THROWS_AS(create_data_loader(*store.backend, "nope", options_with(1, true)), NotFoundError);
    auto doc = create_data_loader(*store.backend, "train", 32, true, 4);
    CHECK(doc->num_batches() == 4);
    CHECK(doc->depth() == 8);
  }
}
