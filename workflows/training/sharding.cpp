// SPDX-License-Identifier: MIT
// Epoch permutations and strided distributed shards (specified in sharding.hpp).
#include "workflows/training/sharding.hpp"

#include <fmt/format.h>
#include <algorithm>

#include "src/errors.hpp"

namespace vstash::training {

namespace {

inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// One pass of the balanced Feistel network over 2 * half bits (sharding.hpp's permute).
inline uint64_t feistel(uint64_t x, unsigned half, uint64_t mask, const std::array<uint64_t, 4>& keys) {
  uint64_t left = x >> half;
  uint64_t right = x & mask;
  for (const uint64_t key : keys) {
    const uint64_t f = mix(right ^ key) & mask;
    left ^= f;
    std::swap(left, right);
  }
  return (left << half) | right;
}

}  // namespace

uint64_t mix64(uint64_t z) { return mix(z); }

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

EpochOrder::EpochOrder(int64_t n, bool shuffle, uint64_t seed, int64_t epoch) : m_n(n), m_shuffle(shuffle) {
  if (n < 0) {
    throw UsageError(fmt::format("epoch order: row count {} is negative", n));
  }
  SplitMix64 rng(seed ^ mix64(static_cast<uint64_t>(epoch)));
  for (auto& key : m_keys) {
    key = rng.next();
  }
  while (m_half < 32 && (uint64_t{1} << (2 * m_half)) < static_cast<uint64_t>(n)) {
    ++m_half;
  }
  m_mask = (uint64_t{1} << m_half) - 1;
}

int64_t EpochOrder::at(int64_t i) const {
  if (!m_shuffle) {
    return i;
  }
  // Cycle walking terminates: the Feistel network permutes [0, 4^h), so the cycle through i
  // (which is < n) comes back below n.
  auto x = static_cast<uint64_t>(i);
  do {
    x = feistel(x, m_half, m_mask, m_keys);
  } while (x >= static_cast<uint64_t>(m_n));
  return static_cast<int64_t>(x);
}

void EpochOrder::map(std::span<int64_t> indices) const {
  if (!m_shuffle) {
    return;
  }
  const unsigned half = m_half;
  const uint64_t mask = m_mask;
  const auto keys = m_keys;
  const auto n = static_cast<uint64_t>(m_n);
  // Chunks of elements go through the network together, branch-free: each pass encrypts
  // every element of the chunk still outside [0, n) (all of them at first), independent
  // elements overlapping in the pipeline; the cycle walk of at() for each, in lock step.
  constexpr size_t k_chunk = 256;
  std::array<uint32_t, k_chunk> pending;
  for (size_t begin = 0; begin < indices.size(); begin += k_chunk) {
    int64_t* chunk = indices.data() + begin;
    auto count = static_cast<uint32_t>(std::min(k_chunk, indices.size() - begin));
    for (uint32_t j = 0; j < count; ++j) {
      pending[j] = j;
    }
    while (count > 0) {
      uint32_t left = 0;
      for (uint32_t t = 0; t < count; ++t) {
        const uint32_t j = pending[t];
        const uint64_t x = feistel(static_cast<uint64_t>(chunk[j]), half, mask, keys);
        chunk[j] = static_cast<int64_t>(x);
        pending[left] = j;
        left += x >= n ? 1 : 0;
      }
      count = left;
    }
  }
}

std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch) {
  const EpochOrder order(n, shuffle, seed, epoch);
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)] = order.at(i);
  }
  return out;
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
    case RemainderPolicy::uneven:
      return "uneven";
    case RemainderPolicy::drop:
      return "drop";
    case RemainderPolicy::pad:
      return "pad";
  }
  return "uneven";
}

void validate_shard(const ShardSpec& shard) {
  if (shard.world_size < 1) {
    throw UsageError(fmt::format("world size {} must be at least 1", shard.world_size));
  }
  if (shard.rank < 0 || shard.rank >= shard.world_size) {
    throw UsageError(
        fmt::format("rank {} is outside 0..{} for world size {}", shard.rank, shard.world_size - 1, shard.world_size));
  }
}

namespace {
// Length of the (possibly truncated or padded) order the ranks stride over.
int64_t strided_total(int64_t n, const ShardSpec& shard) {
  const int64_t w = shard.world_size;
  switch (shard.remainder) {
    case RemainderPolicy::uneven:
      return n;
    case RemainderPolicy::drop:
      return n / w * w;
    case RemainderPolicy::pad:
      return n == 0 ? 0 : (n + w - 1) / w * w;
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

OrderKind parse_order_kind(std::string_view name) {
  if (name == "strided") {
    return OrderKind::strided;
  }
  if (name == "global") {
    return OrderKind::global;
  }
  throw UsageError(fmt::format("order \"{}\": expected strided or global", name));
}

EpochPlan::EpochPlan(int64_t n, std::optional<std::vector<int64_t>> selection, const PlanSpec& spec)
    : m_selection(std::move(selection)),
      m_spec(spec),
      m_order(m_selection ? static_cast<int64_t>(m_selection->size()) : n, spec.shuffle, spec.seed, spec.epoch) {
  validate_shard(spec.shard);
  if (spec.batch_size < 1) {
    throw UsageError(fmt::format("batch size {} must be at least 1", spec.batch_size));
  }
  const int64_t m = m_order.size();
  const int64_t w = spec.shard.world_size;
  const int64_t r = spec.shard.rank;
  const int64_t b = spec.batch_size;
  if (spec.kind == OrderKind::strided) {
    m_rows = shard_rows(m, spec.shard);
    m_batches = spec.drop_last ? m_rows / b : (m_rows + b - 1) / b;
    return;
  }
  if (b < w) {
    throw UsageError(
        fmt::format("global batch size {} is smaller than the world size {}: every rank needs a row", b, w));
  }
  if (spec.shard.remainder != RemainderPolicy::uneven) {
    throw UsageError("the global order splits each global batch between the ranks: --remainder does not apply");
  }
  m_full_share = (r + 1) * b / w - r * b / w;
  const int64_t full = m / b;
  m_rows = full * m_full_share + share_size(full);
  m_batches = full + (!spec.drop_last && share_size(full) > 0 ? 1 : 0);
}

int64_t EpochPlan::share_begin(int64_t g) const {
  const int64_t s = std::min(m_spec.batch_size, m_order.size() - g * m_spec.batch_size);
  return g * m_spec.batch_size + m_spec.shard.rank * s / m_spec.shard.world_size;
}

int64_t EpochPlan::share_size(int64_t g) const {
  const int64_t s = std::max<int64_t>(0, std::min(m_spec.batch_size, m_order.size() - g * m_spec.batch_size));
  const int64_t r = m_spec.shard.rank;
  const int64_t w = m_spec.shard.world_size;
  return (r + 1) * s / w - r * s / w;
}

int64_t EpochPlan::rows() const { return m_rows; }

bool EpochPlan::contiguous() const { return !m_spec.shuffle && m_spec.shard.world_size == 1 && !m_selection; }

int64_t EpochPlan::batch_begin(int64_t k) const {
  return m_spec.kind == OrderKind::global ? k * m_full_share : k * m_spec.batch_size;
}

int64_t EpochPlan::order_index(int64_t entry) const {
  if (m_spec.kind == OrderKind::strided) {
    // i % m wraps the padded tail back to the start of the order (m < W wraps more than once).
    return (m_spec.shard.rank + entry * m_spec.shard.world_size) % m_order.size();
  }
  // The short last batch's share may be larger than a full one's (floors), so it is apart.
  const int64_t full = m_order.size() / m_spec.batch_size;
  if (entry >= full * m_full_share) {
    return share_begin(full) + entry - full * m_full_share;
  }
  return share_begin(entry / m_full_share) + entry % m_full_share;
}

void EpochPlan::entries_into(int64_t first, int64_t end, std::vector<int64_t>& out) const {
  out.resize(static_cast<size_t>(end - first));
  if (out.empty()) {
    return;
  }
  // The order indices: strided entries step by W through the order (wrapping past its end
  // when padded), global ones through consecutive shares.
  if (m_spec.kind == OrderKind::strided) {
    const int64_t m = m_order.size();
    const int64_t w = m_spec.shard.world_size;
    int64_t i = order_index(first);
    for (auto& o : out) {
      o = i;
      for (i += w; i >= m;) {
        i -= m;
      }
    }
  } else {
    for (int64_t j = first; j < end; ++j) {
      out[static_cast<size_t>(j - first)] = order_index(j);
    }
  }
  m_order.map(out);
  if (m_selection) {
    for (auto& o : out) {
      o = (*m_selection)[static_cast<size_t>(o)];
    }
  }
}

std::vector<int64_t> EpochPlan::entries(int64_t begin, int64_t count) const {
  const int64_t first = std::clamp<int64_t>(begin, 0, m_rows);
  const int64_t end = std::clamp<int64_t>(first + std::max<int64_t>(count, 0), first, m_rows);
  std::vector<int64_t> out;
  entries_into(first, end, out);
  return out;
}

std::vector<int64_t> EpochPlan::batch(int64_t k) const {
  std::vector<int64_t> out;
  batch_into(k, out);
  return out;
}

void EpochPlan::batch_into(int64_t k, std::vector<int64_t>& out) const {
  int64_t count = m_spec.batch_size;
  if (m_spec.kind == OrderKind::global) {
    const int64_t full = m_order.size() / m_spec.batch_size;
    count = k < full ? m_full_share : share_size(full);
  }
  const int64_t first = std::clamp<int64_t>(batch_begin(k), 0, m_rows);
  entries_into(first, std::clamp<int64_t>(first + count, first, m_rows), out);
}

}  // namespace vstash::training
