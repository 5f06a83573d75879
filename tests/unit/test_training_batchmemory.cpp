// SPDX-License-Identifier: MIT
// keep_batch_memory (workflows/training/batchmemory.hpp): a freed batch's pages serve the
// next batch instead of being faulted in (and zero-filled) again.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <cstddef>
#include <vector>

#include "src/array.hpp"
#include "workflows/training/batchmemory.hpp"

using namespace vstash;

// AddressSanitizer has its own allocator and other C libraries no mallopt: nothing to measure.
#if defined(__SANITIZE_ADDRESS__) || !defined(__GLIBC__)
#define VSTASH_MEASURE_BATCH_MEMORY 0
#else
#define VSTASH_MEASURE_BATCH_MEMORY 1
namespace {

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_minflt;
}

// Page faults of `rounds` batches of `bytes` (a zero-filled array, as a store's read makes,
// plus small blocks like its replies), each freed before the next is made.
long faults_of_batches(size_t bytes, int rounds) {
  const long before = minor_faults();
  for (int r = 0; r < rounds; ++r) {
    Array batch(DType::u8, {static_cast<int64_t>(bytes)});
    std::vector<std::vector<std::byte> > replies;
    for (size_t i = 0; i < bytes / 4096; ++i) {
      replies.emplace_back(3000, std::byte{1});
    }
    batch.data()[bytes - 1] = std::byte{2};
    CHECK(batch.data()[0] == std::byte{0});  // a new batch is still zero-filled
  }
  return minor_faults() - before;
}

}  // namespace
#endif

TEST_SUITE("training batch memory") {
  TEST_CASE("after keep_batch_memory a stream's batches reuse the freed pages") {
#if !VSTASH_MEASURE_BATCH_MEMORY
    MESSAGE("AddressSanitizer or not glibc: keep_batch_memory is a no-op, nothing to measure");
#else
    constexpr size_t k_batch = size_t{6} << 20;  // above glibc's default mmap threshold
    constexpr int k_rounds = 8;
    training::keep_batch_memory(k_batch + (size_t{6} << 20), 4 * k_batch);
    faults_of_batches(k_batch, 1);  // the first batch maps its pages
    const long faults = faults_of_batches(k_batch, k_rounds);
    // Fresh pages would fault at least once per 4 KiB of each batch.
    const long fresh = k_rounds * static_cast<long>(k_batch / 4096);
    CHECK_MESSAGE(faults < fresh / 20, "page faults: ", faults, " of at most ", fresh);
#endif
  }

  TEST_CASE("keep_batch_memory accepts any sizes and only raises what it set") {
    training::keep_batch_memory(0, 0);
    training::keep_batch_memory(size_t{1} << 40, size_t{1} << 40);  // capped, not an error
    training::keep_batch_memory(1, 1);
  }
}
