// SPDX-License-Identifier: MIT
// Epoch permutations (bit-exact with the Python recipe in sharding.hpp) and distributed shards.
#include <doctest/doctest.h>
#include <algorithm>
#include <map>
#include <numeric>

#include "src/errors.hpp"
#include "workflows/training/sharding.hpp"

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
    CHECK(epoch_order(10, true, 42, 0) == std::vector<int64_t>{1, 0, 3, 5, 9, 2, 8, 7, 6, 4});
    CHECK(epoch_order(10, true, 42, 1) == std::vector<int64_t>{7, 8, 1, 2, 0, 5, 3, 9, 4, 6});
    CHECK(epoch_order(12, true, 7, 3) == std::vector<int64_t>{11, 10, 3, 5, 2, 4, 7, 8, 1, 0, 6, 9});
    CHECK(epoch_order(5, true, 1, 0) == std::vector<int64_t>{0, 4, 2, 3, 1});
    const EpochOrder big(1000, true, 5, 2);
    CHECK(std::vector<int64_t>{big.at(0), big.at(1), big.at(2), big.at(3), big.at(7)} ==
          std::vector<int64_t>{254, 342, 807, 493, 575});
  }

  TEST_CASE("the shuffled order is a permutation for every size tried") {
    for (int64_t n : {0, 1, 2, 3, 4, 5, 7, 15, 16, 17, 63, 64, 65, 1000, 4095, 4096, 4097, 65537}) {
      for (uint64_t seed : {0ULL, 1ULL, 0xFFFFFFFFFFFFFFFFULL}) {
        CAPTURE(n);
        CAPTURE(seed);
        CHECK(is_permutation_of_range(epoch_order(n, true, seed, 3), n));
      }
    }
  }

  TEST_CASE("one position of a million-row order costs no more than a few evaluations") {
    // Random access: a batch of 256 from 1M rows needs 256 evaluations, not the permutation.
    const EpochOrder order(1'000'000, true, 11, 0);
    std::vector<int64_t> batch;
    for (int64_t i = 500'000; i < 500'256; ++i) {
      batch.push_back(order.at(i));
    }
    std::sort(batch.begin(), batch.end());
    CHECK(std::adjacent_find(batch.begin(), batch.end()) == batch.end());
    CHECK(batch.front() >= 0);
    CHECK(batch.back() < 1'000'000);
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

  TEST_CASE("a strided plan's batches are the rank's shard of the epoch order, cut in batches") {
    for (int64_t w : {1, 3}) {
      for (auto policy : {RemainderPolicy::uneven, RemainderPolicy::drop, RemainderPolicy::pad}) {
        for (int64_t r = 0; r < w; ++r) {
          const ShardSpec shard{r, w, policy};
          const auto expected = shard_positions(epoch_order(23, true, 4, 1), shard);
          const EpochPlan plan(23, std::nullopt, {true, 4, 1, shard, OrderKind::strided, 5, false});
          std::vector<int64_t> got;
          for (int64_t k = 0; k < plan.batches(); ++k) {
            const auto b = plan.batch(k);
            CHECK(static_cast<int64_t>(b.size()) == std::min<int64_t>(5, plan.rows() - 5 * k));
            got.insert(got.end(), b.begin(), b.end());
          }
          CHECK(got == expected);
        }
      }
    }
  }

  TEST_CASE("a plan's batch positions equal EpochOrder::at element by element") {
    // The reference walks the order one element at a time (sharding.hpp's recipe); the plan
    // computes a batch in one pass (EpochOrder::map). Sizes around powers of 4 change the
    // Feistel width and the cycle walking; a selection maps through its own order.
    for (int64_t n : {1, 2, 3, 4, 5, 16, 17, 63, 64, 65, 1000, 4097, 100000}) {
      for (uint64_t seed : {0ULL, 7ULL, 0xFFFFFFFFFFFFFFFFULL}) {
        for (int64_t w : {1, 3}) {
          for (auto policy : {RemainderPolicy::uneven, RemainderPolicy::pad}) {
            for (bool select : {false, true}) {
              std::vector<int64_t> selected;
              for (int64_t i = 0; select && i < n; i += 3) {
                selected.push_back(i);
              }
              const int64_t m = select ? static_cast<int64_t>(selected.size()) : n;
              const EpochOrder order(m, true, seed, 2);
              const int64_t r = w - 1;
              const ShardSpec shard{r, w, policy};
              const EpochPlan plan(n, select ? std::optional(selected) : std::nullopt,
                                   {true, seed, 2, shard, OrderKind::strided, 256, false});
              std::vector<int64_t> got;
              std::vector<int64_t> buffer;
              for (int64_t k = 0; k < plan.batches(); ++k) {
                plan.batch_into(k, buffer);
                got.insert(got.end(), buffer.begin(), buffer.end());
              }
              std::vector<int64_t> expected;
              for (int64_t e = 0; e < shard_rows(m, shard); ++e) {
                const int64_t i = order.at((r + e * w) % m);
                expected.push_back(select ? selected[static_cast<size_t>(i)] : i);
              }
              CAPTURE(n);
              CAPTURE(seed);
              CAPTURE(w);
              CAPTURE(select);
              REQUIRE(got == expected);
              const auto from = static_cast<std::ptrdiff_t>(std::min<size_t>(3, expected.size()));
              const auto to = static_cast<std::ptrdiff_t>(std::min<size_t>(8, expected.size()));
              CHECK(plan.entries(3, 5) == std::vector<int64_t>(expected.begin() + from, expected.begin() + to));
            }
          }
        }
      }
    }
  }

  TEST_CASE("a selection is shuffled over its own positions") {
    const std::vector<int64_t> selected{2, 3, 5, 8, 13, 21, 34};
    const EpochPlan plan(40, selected, {true, 9, 0, {}, OrderKind::strided, 100, false});
    const auto order = epoch_order(7, true, 9, 0);
    std::vector<int64_t> expected;
    for (auto i : order) {
      expected.push_back(selected[static_cast<size_t>(i)]);
    }
    CHECK(plan.batch(0) == expected);
    CHECK(plan.batches() == 1);
  }

  TEST_CASE("global batches are the same for every world size and the ranks' shares cover them") {
    for (int64_t n : {0, 1, 37, 40, 41, 103}) {
      for (int64_t g : {4, 5, 8, 13}) {
        for (bool drop : {false, true}) {
          const EpochPlan single(n, std::nullopt, {true, 3, 2, {}, OrderKind::global, g, drop});
          for (int64_t w : {1, 2, 3, 4, 5}) {  // 5 ranks of G = 8: a short batch's share can be larger
            if (g < w) {
              continue;
            }
            std::vector<EpochPlan> ranks;
            for (int64_t r = 0; r < w; ++r) {
              ranks.emplace_back(n, std::nullopt, PlanSpec{true, 3, 2, {r, w}, OrderKind::global, g, drop});
            }
            for (int64_t k = 0; k < single.batches(); ++k) {
              std::vector<int64_t> joined;
              for (const auto& plan : ranks) {
                if (k < plan.batches()) {
                  const auto part = plan.batch(k);
                  joined.insert(joined.end(), part.begin(), part.end());
                }
              }
              CAPTURE(n);
              CAPTURE(g);
              CAPTURE(w);
              CAPTURE(k);
              CHECK(joined == single.batch(k));
            }
            for (const auto& plan : ranks) {
              CHECK(plan.batches() <= single.batches());
              CHECK(plan.batches() >= single.batches() - 1);
            }
          }
        }
      }
    }
  }

  TEST_CASE("a global run begun at 4 ranks resumes at 2 ranks reading every remaining row once") {
    const int64_t n = 103;
    const int64_t g = 8;
    std::vector<int64_t> seen;
    for (int64_t r = 0; r < 4; ++r) {
      const EpochPlan plan(n, std::nullopt, {true, 1, 0, {r, 4}, OrderKind::global, g, false});
      for (int64_t k = 0; k < 5; ++k) {
        const auto b = plan.batch(k);
        seen.insert(seen.end(), b.begin(), b.end());
      }
    }
    for (int64_t r = 0; r < 2; ++r) {
      const EpochPlan plan(n, std::nullopt, {true, 1, 0, {r, 2}, OrderKind::global, g, false});
      for (int64_t k = 5; k < plan.batches(); ++k) {
        const auto b = plan.batch(k);
        seen.insert(seen.end(), b.begin(), b.end());
      }
    }
    CHECK(is_permutation_of_range(seen, n));
  }

  TEST_CASE("global plans refuse a global batch smaller than the world and a remainder policy") {
    CHECK_THROWS_AS(EpochPlan(10, std::nullopt, {true, 1, 0, {0, 4}, OrderKind::global, 3, false}), UsageError);
    CHECK_THROWS_AS(
        EpochPlan(10, std::nullopt, {true, 1, 0, {0, 2, RemainderPolicy::pad}, OrderKind::global, 4, false}),
        UsageError);
    CHECK_THROWS_AS(parse_order_kind("elastic"), UsageError);
  }
}
