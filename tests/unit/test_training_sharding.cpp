// SPDX-License-Identifier: MIT
// Epoch permutations (bit-exact with the Python recipe in sharding.hpp) and distributed shards.
#include <algorithm>
#include <doctest/doctest.h>
#include <map>
#include <numeric>

#include "src/errors.hpp"
#include "src/training/sharding.hpp"

using namespace vstash;
using namespace vstash::training;

namespace {
bool is_permutation_of_range(std::vector<int64_t> v, int64_t n) {
  std::sort(v.begin(), v.end());
  std::vector<int64_t> expected(static_cast<size_t>(n));
  std::iota(expected.begin(), expected.end(), int64_t{0});
  return v == expected;
}
}  // namespace

TEST_SUITE("training::sharding") {
  TEST_CASE("splitmix64 produces the published reference output") {
    SplitMix64 rng(0);
    CHECK(rng.next() == 0xE220A8397B1DCDAFULL);
    CHECK(rng.next() == 0x6E789E6AA1B965F4ULL);
  }

  TEST_CASE("below stays in range and reaches every value") {
    SplitMix64 rng(123);
    std::vector<int> seen(7, 0);
    for (int i = 0; i < 700; ++i) {
      const auto v = rng.below(7);
      REQUIRE(v < 7);
      ++seen[v];
    }
    CHECK(std::count(seen.begin(), seen.end(), 0) == 0);
  }

  TEST_CASE("epoch order matches the documented Python recipe") {
    // Values printed by the recipe in sharding.hpp run under CPython.
    CHECK(epoch_order(10, true, 42, 0) == std::vector<int64_t>{0, 9, 5, 8, 6, 4, 7, 2, 1, 3});
    CHECK(epoch_order(10, true, 42, 1) == std::vector<int64_t>{6, 9, 1, 5, 0, 8, 4, 2, 3, 7});
    CHECK(epoch_order(12, true, 7, 3) == std::vector<int64_t>{2, 11, 7, 3, 1, 4, 10, 8, 9, 6, 5, 0});
  }

  TEST_CASE("an unshuffled order is ascending and a shuffled one is a permutation") {
    CHECK(epoch_order(5, false, 99, 3) == std::vector<int64_t>{0, 1, 2, 3, 4});
    CHECK(epoch_order(0, true, 1, 0).empty());
    CHECK(epoch_order(1, true, 1, 0) == std::vector<int64_t>{0});
    const auto order = epoch_order(1000, true, 5, 2);
    CHECK(is_permutation_of_range(order, 1000));
    CHECK(order != epoch_order(1000, false, 5, 2));
  }

  TEST_CASE("epochs and seeds change the order and the same pair reproduces it") {
    const auto a = epoch_order(500, true, 1, 0);
    CHECK(a == epoch_order(500, true, 1, 0));
    CHECK(a != epoch_order(500, true, 1, 1));
    CHECK(a != epoch_order(500, true, 2, 0));
  }

  TEST_CASE("shards are disjoint and cover every row once with the uneven policy") {
    for (int64_t w : {1, 3, 4}) {
      for (int64_t n : {0, 1, 2, 10, 11, 12, 13}) {
        const auto order = epoch_order(n, true, 3, 1);
        std::vector<int64_t> all;
        for (int64_t r = 0; r < w; ++r) {
          const ShardSpec shard{r, w, RemainderPolicy::uneven};
          const auto part = shard_positions(order, shard);
          CHECK(static_cast<int64_t>(part.size()) == shard_rows(n, shard));
          CHECK(static_cast<int64_t>(part.size()) == n / w + (r < n % w ? 1 : 0));
          all.insert(all.end(), part.begin(), part.end());
        }
        CAPTURE(w);
        CAPTURE(n);
        CHECK(is_permutation_of_range(all, n));
      }
    }
  }

  TEST_CASE("the drop policy gives equal disjoint shards missing only the tail of the order") {
    for (int64_t w : {1, 3, 4}) {
      const int64_t n = 13;
      const auto order = epoch_order(n, true, 9, 0);
      std::vector<int64_t> all;
      for (int64_t r = 0; r < w; ++r) {
        const auto part = shard_positions(order, {r, w, RemainderPolicy::drop});
        CHECK(static_cast<int64_t>(part.size()) == n / w);
        all.insert(all.end(), part.begin(), part.end());
      }
      std::sort(all.begin(), all.end());
      CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
      std::vector<int64_t> head(order.begin(), order.begin() + n / w * w);
      std::sort(head.begin(), head.end());
      CHECK(all == head);
    }
  }

  TEST_CASE("the pad policy gives equal shards covering every row, repeating the start of the order") {
    for (int64_t w : {1, 3, 4}) {
      for (int64_t n : {2, 13, 12}) {
        const auto order = epoch_order(n, true, 9, 0);
        const int64_t per_rank = (n + w - 1) / w;
        std::map<int64_t, int> count;
        for (int64_t r = 0; r < w; ++r) {
          const auto part = shard_positions(order, {r, w, RemainderPolicy::pad});
          CHECK(static_cast<int64_t>(part.size()) == per_rank);
          for (auto p : part) {
            ++count[p];
          }
        }
        CAPTURE(w);
        CAPTURE(n);
        CHECK(static_cast<int64_t>(count.size()) == n);
        const int64_t padding = per_rank * w - n;
        for (int64_t i = 0; i < n; ++i) {
          // The padded tail is order[0], order[1], ...: exactly those rows are read twice.
          const int expected = 1 + (i < padding ? 1 : 0) + (i + n < padding ? 1 : 0);
          CHECK(count[order[static_cast<size_t>(i)]] == expected);
        }
      }
    }
  }

  TEST_CASE("shards stride over the order like DistributedSampler") {
    const std::vector<int64_t> order{7, 3, 9, 1, 0, 5, 2};
    // order[r::3]: rank 0 takes indices 0, 3, 6; rank 1 takes 1, 4; rank 2 takes 2, 5.
    CHECK(shard_positions(order, {0, 3, RemainderPolicy::uneven}) == std::vector<int64_t>{7, 1, 2});
    CHECK(shard_positions(order, {1, 3, RemainderPolicy::uneven}) == std::vector<int64_t>{3, 0});
    CHECK(shard_positions(order, {2, 3, RemainderPolicy::uneven}) == std::vector<int64_t>{9, 5});
    CHECK(shard_positions(order, {2, 3, RemainderPolicy::pad}) == std::vector<int64_t>{9, 5, 3});
    CHECK(shard_positions(order, {0, 3, RemainderPolicy::drop}) == std::vector<int64_t>{7, 1});
  }

  TEST_CASE("bad ranks, world sizes and policy names are usage errors") {
    CHECK_THROWS_AS(validate_shard({3, 3, RemainderPolicy::uneven}), UsageError);
    CHECK_THROWS_AS(validate_shard({-1, 3, RemainderPolicy::uneven}), UsageError);
    CHECK_THROWS_AS(validate_shard({0, 0, RemainderPolicy::uneven}), UsageError);
    CHECK_THROWS_AS(parse_remainder_policy("even"), UsageError);
    CHECK(parse_remainder_policy("pad") == RemainderPolicy::pad);
    CHECK(remainder_policy_name(RemainderPolicy::drop) == "drop");
  }
}
