// SPDX-License-Identifier: MIT
// The write phase of `vstash ingest`: blocks of the file are read ahead on one thread and
// written by one or more writer threads, each through its own backend connection, while the
// resume point advances over the committed blocks. Independent of the CLI (it takes a block
// reader and a progress callback), so the ordering rules are unit-tested directly.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::ingest {

// File rows [first, first + count) as a batch with explicit indices (called on one thread).
using ReadBlock = std::function<backends::RowBatch(int64_t first, int64_t count)>;

struct IngestPlan {
  backends::DatasetSpec spec;  // the dataset; its metadata is replaced by the watermark
  int64_t start = 0;           // first file row to write (after --resume)
  int64_t total = 0;           // one past the last file row to write (the file's rows, or a rank's slice end)
  int64_t batch_size = 10240;  // rows per write_rows call (one transaction where supported); the CLI sizes it by row
  int64_t base = 0;            // index of file row 0
  // The dataset metadata key of the resume point (a sharded ingest keeps one per rank).
  std::string watermark_key = "ingest_watermark";
};

// Rows per write when the caller does not choose: 10240, or fewer so that a block stays under
// 16 MiB (the pipeline holds about 2 x writers + 1 blocks, so memory stays bounded for wide
// rows); a multiple of 256 where possible, so stores that keep rows in chunks of 256 (Redis)
// write whole chunks.
int64_t default_block_rows(const backends::DatasetSpec& spec);

// Writes file rows [plan.start, plan.total) with one thread per entry of `writers` (each
// call to write_rows is atomic, so blocks commit whole, possibly out of order). Once the
// longest run of committed blocks from plan.start has grown by four blocks since the last
// mark, and when it reaches plan.total, `plan.watermark_key` is set to its end: a crash at any
// point leaves a watermark no later than the committed rows, and --resume re-sends at most
// four committed blocks besides those that were in flight (rows are upserted by id, so
// re-sent rows replace themselves). `progress` gets the number of rows
// committed so far, on the calling thread, at least every 100 ms; if it throws (Ctrl-C),
// that error is the pipeline's. The first error any thread meets stops the others after
// their current block and is rethrown here.
void run_pipeline(const ReadBlock& read, const IngestPlan& plan, const std::vector<backends::Backend*>& writers,
                  const std::function<void(int64_t)>& progress);

// --- many processes, one dataset (ingest and copy --rank R --world-size W) ----------------
struct Shard {
  int64_t rank = 0;
  int64_t world_size = 0;  // 0: not sharded
  bool sharded() const { return world_size > 0; }
};

// Rows [begin, end) of a load.
struct Slice {
  int64_t begin = 0;
  int64_t end = 0;
};

// Rank r's contiguous rows of `total`: [floor(r * total / W), floor((r + 1) * total / W)),
// so every row keeps the index and id a single process gives it; all rows when not sharded.
Slice slice_rows(int64_t total, const Shard& shard);

// The dataset metadata key of the resume point: `ingest_watermark`, or for a rank its own
// `ingest_watermark_rank_R` (the catalog merges metadata key by key, so ranks never overwrite
// each other's). A sharded load also records W under k_world_size_key.
std::string watermark_key(const Shard& shard);
inline constexpr const char* k_world_size_key = "ingest_world_size";

// The writer a rank's connections are named for (RowStore::set_writer): "rank-R", or "" (the
// single writer) when not sharded. Stores without an atomic dataset record keep each rank's
// next_index and resume point in a record of the rank's own, so ranks never overwrite them.
std::string writer_name(const Shard& shard);

// Where a rank starts in a dataset that exists (`what` names the load in messages): its own
// resume point with `resume`, its slice's start if it never began (other ranks may be
// writing). ConflictError if it began before and `resume` is not set, if the dataset records
// another world size, or if it holds rows of a load that was not sharded.
int64_t sharded_start(const backends::DatasetInfo& info, const Shard& shard, Slice slice, bool resume,
                      const std::string& what);

}  // namespace vstash::ingest
