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

}  // namespace vstash::ingest
