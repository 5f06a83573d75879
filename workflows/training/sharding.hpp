// SPDX-License-Identifier: MIT
// Epoch orders and distributed shards: which dataset positions a rank reads in an epoch.
//
// The shuffle is a keyed bijection of [0, n) evaluated one position at a time, so a batch of
// 256 rows out of a million costs 256 evaluations, never a million-element permutation. It is
// specified bit for bit so that any language can reproduce it (the C++ below and this Python
// give the same order; the unit tests pin values printed by CPython):
//
//   M = (1 << 64) - 1
//   def mix(z):                                  # splitmix64's finaliser
//       z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
//       z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
//       return z ^ (z >> 31)
//   def epoch_keys(seed, epoch):                 # 4 round keys: splitmix64 from (seed, epoch)
//       state, keys = (seed ^ mix(epoch)) & M, []
//       for _ in range(4):
//           state = (state + 0x9E3779B97F4A7C15) & M
//           keys.append(mix(state))
//       return keys
//   def half_bits(n):                            # smallest h >= 1 with 4**h >= n
//       h = 1
//       while (1 << (2 * h)) < n:
//           h += 1
//       return h
//   def permute(i, n, keys):                     # order[i], 0 <= i < n
//       h = half_bits(n)
//       mask = (1 << h) - 1
//       x = i
//       while True:                              # cycle walking: re-encrypt until < n
//           left, right = x >> h, x & mask       # a balanced Feistel network on 2h bits
//           for k in keys:
//               left, right = right, left ^ (mix(right ^ k) & mask)
//           x = (left << h) | right
//           if x < n:
//               return x
//   def epoch_order(n, seed, epoch):
//       keys = epoch_keys(seed, epoch)
//       return [permute(i, n, keys) for i in range(n)]
//
// Unshuffled, order[i] = i. (Before this recipe, vstash shuffled with a Fisher-Yates pass over
// the same splitmix64 stream; orders of a given seed differ from those versions.)
//
// A selection (batch --filter, --split) restricts the epoch to m of the n positions: the order
// is then selected[permute(i, m, keys)], the selected positions kept ascending.
//
// Strided shards (the default, like PyTorch's DistributedSampler): rank r takes order[r],
// order[r + W], order[r + 2W], ... The remainder when W does not divide n:
//   uneven (default)  the first n % W ranks get one row more; every row exactly once
//   drop              the last n % W rows of the order are dropped; equal shards, a few
//                     rows (different ones each epoch when shuffled) are not read
//   pad               the order is extended by repeating it from the start to ceil(n/W)*W
//                     rows (DistributedSampler's default); equal shards, but up to W-1 rows
//                     are read twice, so "exactly once" does not hold for them
//
// Global order (elastic): the order is cut into global batches of G rows (the last one
// shorter), the same for any world size. Global batch g is order[g*G, g*G + s) with
// s = min(G, n - g*G); rank r of W reads order[g*G + r*s//W, g*G + (r+1)*s//W): the ranks'
// shares are contiguous, disjoint and cover the global batch, and differ by at most one row
// when W does not divide G. Needs G >= W. Rank batch k is its share of global batch k, so a run
// may stop after global batch k at one world size and resume at k with another, reading every
// remaining row once. A rank whose share of the short last global batch is empty has one batch
// fewer; with drop_last the short last global batch is skipped by every rank.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vstash::training {

// splitmix64 (Steele, Lea, Flood 2014): tiny, fast and identical everywhere.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t state) : m_state(state) {}
  uint64_t next();
  // Uniform in [0, bound), bound > 0, by rejection (no modulo bias).
  uint64_t below(uint64_t bound);

 private:
  uint64_t m_state;
};

// splitmix64's output function.
uint64_t mix64(uint64_t z);

// The epoch order of n positions, random access: at(i) in O(1) (expected), no allocation.
class EpochOrder {
 public:
  // Throws UsageError if n < 0.
  EpochOrder(int64_t n, bool shuffle, uint64_t seed, int64_t epoch);
  int64_t size() const { return m_n; }
  // order[i] for 0 <= i < size().
  int64_t at(int64_t i) const;
  // Replaces each i in [0, size()) by order[i], equal to at(i) element by element, in one
  // pass over all of them (the rounds of independent elements overlap in the pipeline).
  void map(std::span<int64_t> indices) const;

 private:
  int64_t m_n;
  bool m_shuffle;
  unsigned m_half = 1;
  uint64_t m_mask = 1;
  std::array<uint64_t, 4> m_keys{};
};

// Positions 0..n-1 in epoch order (EpochOrder materialised).
std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch);

enum class RemainderPolicy { uneven, drop, pad };
// "uneven", "drop", "pad"; throws UsageError otherwise.
RemainderPolicy parse_remainder_policy(std::string_view name);
std::string_view remainder_policy_name(RemainderPolicy policy);

struct ShardSpec {
  int64_t rank = 0;
  int64_t world_size = 1;
  RemainderPolicy remainder = RemainderPolicy::uneven;
};
// Throws UsageError unless world_size >= 1 and 0 <= rank < world_size.
void validate_shard(const ShardSpec& shard);

// Number of rows rank reads from an epoch of n rows (strided shards).
int64_t shard_rows(int64_t n, const ShardSpec& shard);
// The rank's slice of an epoch order (strided shards, see the policies above).
std::vector<int64_t> shard_positions(const std::vector<int64_t>& order, const ShardSpec& shard);

enum class OrderKind { strided, global };
// "strided", "global"; throws UsageError otherwise.
OrderKind parse_order_kind(std::string_view name);

struct PlanSpec {
  bool shuffle = false;
  uint64_t seed = 0;
  int64_t epoch = 0;
  ShardSpec shard;
  OrderKind kind = OrderKind::strided;
  int64_t batch_size = 1;  // strided: the rank's batch size; global: the global batch size G
  bool drop_last = false;  // drop the rank's (strided) or every rank's (global) short last batch
};

// One rank's epoch in batches: which positions batch k holds. The positions of a batch are
// computed when asked for (O(batch size)); nothing of size n is materialised except the
// selection, when there is one.
class EpochPlan {
 public:
  // selection: the positions the epoch is over (ascending), or nullopt for all n rows.
  // Throws UsageError for a bad shard, batch size < 1, or (global) G < world size.
  EpochPlan(int64_t n, std::optional<std::vector<int64_t>> selection, const PlanSpec& spec);
  // Rows the rank reads in the epoch (before drop_last).
  int64_t rows() const;
  int64_t batches() const { return m_batches; }
  // Positions of entries [begin, begin + count) of the rank's sequence (its batches end to
  // end), clipped to rows().
  std::vector<int64_t> entries(int64_t begin, int64_t count) const;
  // Positions of batch k (0 <= k < batches()).
  std::vector<int64_t> batch(int64_t k) const;
  // The same into out (its capacity reused from batch to batch: no allocation per batch).
  void batch_into(int64_t k, std::vector<int64_t>& out) const;
  // True when the rank reads every position in ascending order (unshuffled, one rank, no
  // selection): batch k is then the contiguous range starting at batch_begin(k).
  bool contiguous() const;
  int64_t batch_begin(int64_t k) const;

 private:
  int64_t order_index(int64_t entry) const;  // rank sequence entry -> order index
  // Entries [first, end) of the rank's sequence (within rows()) into out, in one pass per step.
  void entries_into(int64_t first, int64_t end, std::vector<int64_t>& out) const;
  int64_t share_begin(int64_t g) const;  // global: rank's first order index in batch g
  int64_t share_size(int64_t g) const;

  std::optional<std::vector<int64_t>> m_selection;
  PlanSpec m_spec;
  EpochOrder m_order;
  int64_t m_rows = 0;
  int64_t m_batches = 0;
  int64_t m_full_share = 0;  // global: the rank's share of a full global batch
};

}  // namespace vstash::training
