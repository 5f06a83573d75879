// SPDX-License-Identifier: MIT
// keep_batch_memory: glibc's mmap and trim thresholds, raised once per size.
#include "workflows/training/batchmemory.hpp"

#include <algorithm>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace vstash::training {

namespace {

constexpr size_t k_max_mmap_threshold = size_t{32} << 20;  // glibc's DEFAULT_MMAP_THRESHOLD_MAX (64-bit)
constexpr size_t k_max_retained = size_t{256} << 20;
constexpr size_t k_min_mmap_threshold = size_t{128} << 10;  // glibc's default
constexpr size_t k_slack = size_t{64} << 10;                // malloc's own header and rounding

}  // namespace

void keep_batch_memory(size_t batch_bytes, size_t retain_bytes) {
#if defined(__GLIBC__)
  static std::mutex mutex;
  static size_t mmap_threshold = 0;
  static size_t trim_threshold = 0;
  const size_t want_mmap = std::clamp(batch_bytes + k_slack, k_min_mmap_threshold, k_max_mmap_threshold);
  const size_t want_trim = std::min(k_max_retained, std::max(retain_bytes, 2 * want_mmap));
  std::lock_guard lock(mutex);
  // Setting either threshold turns off glibc's own adjustment of both: set both, once each.
  if (want_mmap > mmap_threshold && mallopt(M_MMAP_THRESHOLD, static_cast<int>(want_mmap)) == 1) {
    mmap_threshold = want_mmap;
  }
  if (want_trim > trim_threshold && mallopt(M_TRIM_THRESHOLD, static_cast<int>(want_trim)) == 1) {
    trim_threshold = want_trim;
  }
#else
  (void)batch_bytes;
  (void)retain_bytes;
#endif
}

}  // namespace vstash::training
