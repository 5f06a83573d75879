// SPDX-License-Identifier: MIT
// Batch memory that stays mapped from one batch to the next (issue 17, Redis at 100k x 768).
//
// A stream allocates and frees one batch-sized array per batch (plus the store's replies).
// glibc hands a block above its mmap threshold (128 KiB at start) straight back to the
// kernel and trims the heap's free top above its trim threshold, so every batch paid fresh
// pages: a page fault and a zero-fill per 4 KiB (143k faults, a third of the wall time, for
// one epoch of 100k x 768 floats from Redis). keep_batch_memory() acts as the loader's batch
// buffer pool, kept by the allocator: blocks up to batch_bytes come from the heap, and up
// to retain_bytes of freed heap stay mapped, so the next batch reuses the pages of the last
// one. Reuse is the allocator's own: a buffer is only handed out again after it was freed,
// never while a caller still holds it.
//
// Process-wide and cumulative: each call only raises what an earlier call set (capped at
// glibc's largest mmap threshold, 32 MiB, and at 256 MiB retained). A no-op under
// AddressSanitizer (its own allocator) and on other C libraries.
#pragma once

#include <cstddef>

namespace vstash::training {

void keep_batch_memory(size_t batch_bytes, size_t retain_bytes);

}  // namespace vstash::training
