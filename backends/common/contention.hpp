// SPDX-License-Identifier: MIT
// Backing off between optimistic attempts (a compare-and-set, a WATCH/MULTI) that lost to
// another writer: without it, processes that lose together retry together and lose again
// (several `ingest --rank` processes writing one Redis dataset gave up after ten attempts).
#pragma once

#include <chrono>
#include <random>
#include <thread>

namespace vstash::backends {

// How many lost attempts an optimistic write makes before it gives up with ConflictError: the
// catalog's compare-and-set (backends/common/catalog.cpp) and every Redis mutation's
// WATCH/MULTI (backends/redis/redisbackend.cpp). Four ingest ranks committing 16-row blocks to
// one Redis dataset under ASan lost 40 in a row once (sharded_ingest_redis); 200 attempts with
// the pauses below (capped at 32 ms) wait at most ~6 s before the write exits 5.
constexpr int k_contention_attempts = 200;

// Pauses a random 0 .. min(2^attempt, 32) ms after the attempt-th lost attempt (from 0).
inline void contention_pause(int attempt) {
  static thread_local std::minstd_rand rng{std::random_device{}()};
  const int cap = 1 << (attempt < 5 ? attempt : 5);
  std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, cap * 1000)(rng)));
}

}  // namespace vstash::backends
