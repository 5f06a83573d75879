// SPDX-License-Identifier: MIT
// The byte-bounded batch cache: hits, LRU eviction at the byte bound, versioned keys,
// invalidation, and concurrent use.
#include <doctest/doctest.h>
#include <thread>
#include <vector>

#include "src/errors.hpp"
#include "tests/testutil.hpp"
#include "workflows/training/batchcache.hpp"

using namespace vstash;
using namespace vstash::training;
using backends::DatasetInfo;
using backends::RowBatch;

namespace {

DatasetInfo dataset(const std::string& name, int64_t rows = 100) {
  DatasetInfo info;
  info.spec.name = name;
  info.rows = rows;
  info.next_index = rows;
  return info;
}

// A batch of n rows of 8 floats (32 bytes each) whose values depend on seed.
RowBatch batch_of(int64_t n, uint32_t seed) {
  RowBatch b;
  b.data = testutil::random_f32(n, 8, seed);
  for (int64_t i = 0; i < n; ++i) {
    b.ids.push_back("id" + std::to_string(i));
    b.indices.push_back(i);
    b.metadata.emplace_back(nullptr);
  }
  return b;
}

std::vector<int64_t> positions(int64_t first, int64_t n) {
  std::vector<int64_t> p;
  for (int64_t i = 0; i < n; ++i) {
    p.push_back(first + i);
  }
  return p;
}

}  // namespace

TEST_SUITE("training::BatchCache") {
  TEST_CASE("a stored batch comes back equal and counts as a hit") {
    BatchCache cache(1 << 20);
    const auto info = dataset("d");
    CHECK_FALSE(cache.get(info, positions(0, 4)));
    cache.put(info, positions(0, 4), batch_of(4, 1));
    const auto hit = cache.get(info, positions(0, 4));
    REQUIRE(hit);
    CHECK(hit->data == batch_of(4, 1).data);
    CHECK(hit->ids == batch_of(4, 1).ids);
    // Same positions in another order is another batch.
    CHECK_FALSE(cache.get(info, {3, 2, 1, 0}));
    const auto s = cache.stats();
    CHECK(s.hits == 1);
    CHECK(s.misses == 2);
    CHECK(s.entries == 1);
    CHECK(s.bytes > 4 * 32);
  }

  TEST_CASE("the bytes held never exceed the capacity; the least recently used batch goes first") {
    const auto info = dataset("d");
    const int64_t one = batch_bytes(batch_of(4, 0));
    // Room for three batches (keys included) but not four.
    BatchCache cache(4 * one);
    for (int64_t i = 0; i < 3; ++i) {
      cache.put(info, positions(i * 4, 4), batch_of(4, static_cast<uint32_t>(i)));
      CHECK(cache.stats().bytes <= cache.capacity());
    }
    CHECK(cache.stats().entries == 3);
    REQUIRE(cache.get(info, positions(0, 4)));  // batch 0 is now the most recently used
    cache.put(info, positions(12, 4), batch_of(4, 3));
    const auto s = cache.stats();
    CHECK(s.bytes <= cache.capacity());
    CHECK(s.evictions == 1);
    CHECK(cache.get(info, positions(0, 4)));
    CHECK_FALSE(cache.get(info, positions(4, 4)));  // the least recently used one was evicted
    CHECK(cache.get(info, positions(8, 4)));
    CHECK(cache.get(info, positions(12, 4)));
  }

  TEST_CASE("a batch larger than the capacity is not cached and evicts nothing") {
    const auto info = dataset("d");
    BatchCache cache(batch_bytes(batch_of(4, 0)) * 2);
    cache.put(info, positions(0, 4), batch_of(4, 0));
    cache.put(info, positions(4, 100), batch_of(100, 1));
    CHECK(cache.stats().entries == 1);
    CHECK(cache.get(info, positions(0, 4)));
    BatchCache none(0);
    none.put(info, positions(0, 1), batch_of(1, 0));
    CHECK_FALSE(none.get(info, positions(0, 1)));
    CHECK_THROWS_AS(BatchCache(-1), UsageError);
  }

  TEST_CASE("a changed row count misses, and invalidate drops one dataset's batches") {
    BatchCache cache(1 << 20);
    cache.put(dataset("a", 100), positions(0, 4), batch_of(4, 0));
    cache.put(dataset("b", 100), positions(0, 4), batch_of(4, 1));
    CHECK_FALSE(cache.get(dataset("a", 101), positions(0, 4)));  // rows were appended
    cache.invalidate("a");
    CHECK_FALSE(cache.get(dataset("a", 100), positions(0, 4)));
    CHECK(cache.get(dataset("b", 100), positions(0, 4)));
    cache.invalidate();
    CHECK(cache.stats().entries == 0);
    CHECK(cache.stats().bytes == 0);
  }

  TEST_CASE("threads sharing the cache keep its accounting consistent") {
    const auto info = dataset("d");
    BatchCache cache(batch_bytes(batch_of(4, 0)) * 5);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 200; ++i) {
          const auto p = positions((i + t) % 20 * 4, 4);
          if (!cache.get(info, p)) {
            cache.put(info, p, batch_of(4, static_cast<uint32_t>(i)));
          }
        }
      });
    }
    for (auto& th : threads) {
      th.join();
    }
    const auto s = cache.stats();
    CHECK(s.hits + s.misses == 800);
    CHECK(s.bytes <= s.capacity);
    CHECK(s.entries <= 5);
    CHECK(s.entries >= 1);
  }
}
