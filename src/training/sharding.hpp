// SPDX-License-Identifier: MIT
// Epoch orders and distributed shards: which dataset positions a rank reads in an epoch.
//
// The shuffle is specified bit for bit so that any language can reproduce it (std::shuffle
// and std::uniform_int_distribution differ between standard libraries). In Python:
//
//   M = (1 << 64) - 1
//   def mix(z):                                  # splitmix64's finaliser
//       z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
//       z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
//       return z ^ (z >> 31)
//   def epoch_order(n, seed, epoch):
//       state = (seed ^ mix(epoch)) & M          # splitmix64 state for this (seed, epoch)
//       def nxt():
//           nonlocal state
//           state = (state + 0x9E3779B97F4A7C15) & M
//           return mix(state)
//       def below(bound):                        # unbiased: reject the short last bucket
//           threshold = (1 << 64) % bound
//           while True:
//               r = nxt()
//               if r >= threshold:
//                   return r % bound
//       order = list(range(n))
//       for i in range(n - 1, 0, -1):            # Fisher-Yates, from the end
//           j = below(i + 1)
//           order[i], order[j] = order[j], order[i]
//       return order
//
// Shards (like PyTorch's DistributedSampler) are strided over the epoch order: rank r takes
// order[r], order[r + W], order[r + 2W], ... The remainder when W does not divide n:
//   uneven (default)  the first n % W ranks get one row more; every row exactly once
//   drop              the last n % W rows of the order are dropped; equal shards, a few
//                     rows (different ones each epoch when shuffled) are not read
//   pad               the order is extended by repeating it from the start to ceil(n/W)*W
//                     rows (DistributedSampler's default); equal shards, but up to W-1 rows
//                     are read twice, so "exactly once" does not hold for them
#pragma once

#include <cstdint>
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

// Positions 0..n-1 in epoch order: a permutation seeded by (seed, epoch) when shuffle is
// set, else ascending.
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

// Number of rows rank reads from an epoch of n rows.
int64_t shard_rows(int64_t n, const ShardSpec& shard);
// The rank's slice of an epoch order (see the policies above).
std::vector<int64_t> shard_positions(const std::vector<int64_t>& order, const ShardSpec& shard);

}  // namespace vstash::training
