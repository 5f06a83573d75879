// SPDX-License-Identifier: MIT
// Epoch permutations and strided distributed shards (specified in sharding.hpp).
#include "sharding.hpp"

#include <fmt/format.h>
#include <numeric>

#include "../errors.hpp"

namespace vstash::training {

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::next() {
  m_state += 0x9E3779B97F4A7C15ULL;
  return mix64(m_state);
}

uint64_t SplitMix64::below(uint64_t bound) {
  // 2^64 mod bound: values under it belong to an incomplete bucket and would bias r % bound.
  const uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const uint64_t r = next();
    if (r >= threshold) {
      return r % bound;
    }
  }
}

std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch) {
  if (n < 0) {
    throw UsageError(fmt::format("epoch order: row count {} is negative", n));
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!shuffle) {
    return order;
  }
  SplitMix64 rng(seed ^ mix64(static_cast<uint64_t>(epoch)));
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

RemainderPolicy parse_remainder_policy(std::string_view name) {
  if (name == "uneven") {
    return RemainderPolicy::uneven;
  }
  if (name == "drop") {
    return RemainderPolicy::drop;
  }
  if (name == "pad") {
    return RemainderPolicy::pad;
  }
  throw UsageError(fmt::format("shard remainder policy \"{}\": expected uneven, drop or pad", name));
}

std::string_view remainder_policy_name(RemainderPolicy policy) {
  switch (policy) {
    case RemainderPolicy::uneven: return "uneven";
    case RemainderPolicy::drop: return "drop";
    case RemainderPolicy::pad: return "pad";
  }
  return "uneven";
}

void validate_shard(const ShardSpec& shard) {
  if (shard.world_size < 1) {
    throw UsageError(fmt::format("world size {} must be at least 1", shard.world_size));
  }
  if (shard.rank < 0 || shard.rank >= shard.world_size) {
    throw UsageError(fmt::format("rank {} is outside 0..{} for world size {}", shard.rank, shard.world_size - 1,
                                 shard.world_size));
  }
}

namespace {
// Length of the (possibly truncated or padded) order the ranks stride over.
int64_t strided_total(int64_t n, const ShardSpec& shard) {
  const int64_t w = shard.world_size;
  switch (shard.remainder) {
    case RemainderPolicy::uneven: return n;
    case RemainderPolicy::drop: return n / w * w;
    case RemainderPolicy::pad: return n == 0 ? 0 : (n + w - 1) / w * w;
  }
  return n;
}
}  // namespace

int64_t shard_rows(int64_t n, const ShardSpec& shard) {
  validate_shard(shard);
  const int64_t total = strided_total(n, shard);
  return total > shard.rank ? (total - shard.rank + shard.world_size - 1) / shard.world_size : 0;
}

std::vector<int64_t> shard_positions(const std::vector<int64_t>& order, const ShardSpec& shard) {
  validate_shard(shard);
  const auto n = static_cast<int64_t>(order.size());
  const int64_t total = strided_total(n, shard);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(shard_rows(n, shard)));
  // i % n wraps the padded tail back to the start of the order (n < W wraps more than once).
  for (int64_t i = shard.rank; i < total; i += shard.world_size) {
    out.push_back(order[static_cast<size_t>(i % n)]);
  }
  return out;
}

}  // namespace vstash::training
