// SPDX-License-Identifier: MIT
// The local store's SampleReader (backends/rowstore.hpp): a streamed epoch gathers records
// straight from the segment mapping a read transaction named, with no SQLite work per batch.
// The snapshot stays valid while the reader lives: committed slots are never written again
// and a compaction unlinks the file it replaces, which leaves this mapping readable
// (localbackend.cpp, commit protocol).
#pragma once

#include <memory>

#include "backends/local/localstore.hpp"

namespace vstash::backends::local {

// The reader of ds's live rows: position p is slot p of segment when order is null (the
// dataset is in order), else slot order->slot[p].
std::unique_ptr<SampleReader> make_sample_reader(const DatasetRecord& ds, std::shared_ptr<const SegmentMap> segment,
                                                 std::shared_ptr<const RowOrder> order);

}  // namespace vstash::backends::local
