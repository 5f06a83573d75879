// SPDX-License-Identifier: MIT
// The ingest pipeline against the local store with several writer connections: blocks that
// commit out of order, the resume point, a failing block, and a stop from the caller.
#include <doctest/doctest.h>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/forwardingbackend.hpp"
#include "tests/testutil.hpp"
#include "workflows/ingest/pipeline.hpp"

using namespace vstash;
using backends::Backend;
using backends::RowBatch;

namespace {

constexpr int64_t k_rows = 95;
constexpr int64_t k_dim = 4;
constexpr int64_t k_block = 10;

// What every writer connection saw, in one place.
struct Journal {
  std::mutex mutex;
  std::condition_variable changed;
  std::set<int64_t> committed;  // first rows of committed blocks
  std::vector<int64_t> commit_order;
  std::vector<std::pair<int64_t, int64_t>> marks;  // (watermark written, committed prefix then)

  int64_t prefix_locked() const {
    int64_t p = 0;
    while (committed.count(p) != 0) {
      p = std::min(p + k_block, k_rows);
    }
    return p;
  }
  // Waits (bounded) until the block starting at `first` has committed.
  bool wait_for(int64_t first) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(20), [&] { return committed.count(first) != 0; });
  }
};

class JournalingWriter final : public testutil::ForwardingBackend {
 public:
  JournalingWriter(Backend& inner, Journal& journal) : ForwardingBackend(inner), m_journal(journal) {}
  std::function<void(int64_t first)> before_write;  // may wait or throw

  void write_rows(const std::string& d, const RowBatch& b) override {
    const int64_t first = b.indices.at(0);
    if (before_write) {
      before_write(first);
    }
    m_inner.write_rows(d, b);
    std::lock_guard lock(m_journal.mutex);
    m_journal.committed.insert(first);
    m_journal.commit_order.push_back(first);
    m_journal.changed.notify_all();
  }
  void create_dataset(const backends::DatasetSpec& s) override {
    if (s.metadata.contains("ingest_watermark")) {
      std::lock_guard lock(m_journal.mutex);
      m_journal.marks.emplace_back(s.metadata["ingest_watermark"].get<int64_t>(), m_journal.prefix_locked());
    }
    m_inner.create_dataset(s);
  }

 private:
  Journal& m_journal;
};

struct Fixture {
  std::filesystem::path dir = testutil::scratch_dir("pipeline");
  Profile profile{"t", "local", {{"path", (dir / "store.db").string()}}, "test"};
  std::unique_ptr<Backend> main = backends::create_backend(profile);
  Array data = testutil::random_f32(k_rows, k_dim, 7);
  Journal journal;
  std::vector<std::unique_ptr<Backend>> connections;
  std::vector<std::unique_ptr<JournalingWriter>> writers;
  ingest::IngestPlan plan;

  explicit Fixture(int n_writers) {
    plan.spec.name = "ds";
    plan.spec.row_shape = {k_dim};
    plan.total = k_rows;
    plan.batch_size = k_block;
    backends::DatasetSpec spec = plan.spec;
    spec.metadata = {{"ingest_watermark", 0}};
    main->create_dataset(spec);
    for (int i = 0; i < n_writers; ++i) {
      connections.push_back(backends::create_backend(profile));
      writers.push_back(std::make_unique<JournalingWriter>(*connections.back(), journal));
    }
  }
  std::vector<Backend*> writer_ptrs() {
    std::vector<Backend*> out;
    for (auto& w : writers) {
      out.push_back(w.get());
    }
    return out;
  }
  RowBatch read(int64_t first, int64_t count) const {
    RowBatch b;
    b.data = data.slice_rows(first, count);
    for (int64_t r = first; r < first + count; ++r) {
      b.ids.push_back("r" + std::to_string(r));
      b.indices.push_back(r);
      b.metadata.emplace_back(nullptr);
    }
    return b;
  }
  void run(
      int64_t start, const std::function<void(int64_t)>& progress = [](int64_t) {}) {
    plan.start = start;
    ingest::run_pipeline([this](int64_t f, int64_t c) { return read(f, c); }, plan, writer_ptrs(), progress);
  }
  int64_t stored_watermark() { return main->dataset_info("ds")->spec.metadata.value("ingest_watermark", int64_t{-1}); }
  // The store holds exactly the file's rows [0, n) in order, each once.
  void check_rows(int64_t n) {
    CHECK(main->count("ds", nullptr) == n);
    const RowBatch back = main->read_rows("ds", 0, n);
    REQUIRE(back.size() == static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r) {
      CHECK(back.ids[static_cast<size_t>(r)] == "r" + std::to_string(r));
    }
    CHECK(back.data == data.slice_rows(0, n));
  }
};

}  // namespace

TEST_SUITE("ingest::pipeline") {
  TEST_CASE("blocks committed out of order never move the resume point past a gap") {
    Fixture fx(3);
    bool waited = true;
    for (auto& w : fx.writers) {
      // The first block waits until the second has committed, so the second commits first.
      w->before_write = [&](int64_t first) {
        if (first == 0 && !fx.journal.wait_for(k_block)) {
          waited = false;
        }
      };
    }
    std::vector<int64_t> seen;
    fx.run(0, [&](int64_t done) { seen.push_back(done); });
    CHECK(waited);
    REQUIRE(fx.journal.commit_order.size() == 10);
    CHECK(std::find(fx.journal.commit_order.begin(), fx.journal.commit_order.end(), k_block) <
          std::find(fx.journal.commit_order.begin(), fx.journal.commit_order.end(), 0));
    for (const auto& [mark, prefix] : fx.journal.marks) {
      CHECK(mark <= prefix);  // written only over committed rows
    }
    CHECK(std::is_sorted(fx.journal.marks.begin(), fx.journal.marks.end()));
    CHECK(fx.stored_watermark() == k_rows);
    CHECK(seen.back() == k_rows);
    CHECK(std::is_sorted(seen.begin(), seen.end()));
    fx.check_rows(k_rows);
  }

  TEST_CASE("the resume point is written every four blocks and at the end, not after every block") {
    Fixture fx(1);  // one writer: blocks commit in order, so the marks are exact
    fx.run(0);
    std::vector<int64_t> written;
    for (const auto& [mark, prefix] : fx.journal.marks) {
      written.push_back(mark);
    }
    CHECK(written == std::vector<int64_t>{4 * k_block, 8 * k_block, k_rows});
    CHECK(fx.stored_watermark() == k_rows);
    fx.check_rows(k_rows);
  }

  TEST_CASE("a failing block stops the ingest behind it and a resume finishes without duplicates") {
    Fixture fx(2);
    for (auto& w : fx.writers) {
      w->before_write = [](int64_t first) {
        if (first == 50) {
          throw RetryableError("block 50 refused");
        }
      };
    }
    CHECK_THROWS_WITH_AS(fx.run(0), "block 50 refused", RetryableError);
    const int64_t mark = fx.stored_watermark();
    CHECK(mark <= 50);
    CHECK(fx.journal.committed.count(50) == 0);
    // Every row before the watermark is there; later blocks may be too (they are re-sent).
    const RowBatch head = fx.main->read_rows("ds", 0, mark);
    CHECK(head.data == fx.data.slice_rows(0, mark));

    for (auto& w : fx.writers) {
      w->before_write = nullptr;
    }
    fx.run(mark);
    CHECK(fx.stored_watermark() == k_rows);
    fx.check_rows(k_rows);
  }

  TEST_CASE("an error from the progress callback (Ctrl-C) stops every thread and is rethrown") {
    Fixture fx(2);
    // Hold the writers until the callback has thrown, so the stop lands mid-ingest.
    std::mutex m;
    std::condition_variable cv;
    bool stopped = false;
    for (auto& w : fx.writers) {
      w->before_write = [&](int64_t first) {
        if (first >= 2 * k_block) {
          std::unique_lock lock(m);
          cv.wait_for(lock, std::chrono::seconds(20), [&] { return stopped; });
        }
      };
    }
    CHECK_THROWS_WITH(fx.run(0,
                             [&](int64_t done) {
                               if (done >= 2 * k_block) {
                                 {
                                   std::lock_guard lock(m);
                                   stopped = true;
                                 }
                                 cv.notify_all();
                                 throw std::runtime_error("interrupted");
                               }
                             }),
                      "interrupted");
    const int64_t committed = fx.main->count("ds", nullptr);
    CHECK(committed >= 2 * k_block);
    CHECK(committed < k_rows);  // the writers stopped after their current block
    CHECK(fx.stored_watermark() <= committed);
  }

  TEST_CASE("nothing left to write returns at once") {
    Fixture fx(1);
    fx.run(k_rows);
    CHECK(fx.journal.commit_order.empty());
    CHECK(fx.main->count("ds", nullptr) == 0);
  }
}
