// SPDX-License-Identifier: MIT
// The algorithm of `vstash copy`: plan what to do with the destination (create, append,
// replace, resume, or refuse), then stream the source's rows in index order through the
// ingest pipeline (workflows/ingest/pipeline.hpp: read-ahead, the destination's writers, a durable
// resume point). Independent of the CLI: it takes backends and a progress callback.
//
// Resuming: the destination dataset's metadata keeps `copy_source` (the source's address),
// `copy_source_rows` (its row count when the copy began), `copy_base` (added to every source
// index) and the pipeline's `ingest_watermark` (source positions known committed). --resume
// starts at the watermark; rows are upserted by id with their indices, so rows re-sent after a
// crash replace themselves: no duplicates, no gaps.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "workflows/ingest/pipeline.hpp"

namespace vstash::transfer {

struct CopyRequest {
  std::string src_dataset;
  std::string dst_dataset;
  std::string src_address;      // "PROFILE:DATASET", recorded in the destination for --resume
  std::string dst_address;      // "PROFILE:DATASET", for messages (the dataset name if empty)
  std::string dst_kind;         // the destination's Backend::kind(), for the exactness rules
  bool append = false;          // add to a non-empty compatible destination after its rows
  bool replace = false;         // drop an existing destination first
  bool resume = false;          // continue an interrupted copy of the same source
  bool lossy_metadata = false;  // --allow-lossy metadata: drop metadata the destination cannot hold
  int64_t block_rows = 0;       // 0: by row size, as ingest (ingest::default_block_rows)
  ingest::Shard shard;          // --rank/--world-size: copy only this rank's slice of the source
};

struct CopyPlan {
  backends::DatasetSpec spec;  // the destination's: the source's spec and metadata, the new name
  int64_t total = 0;           // one past the last source position to write (source rows, or a rank's slice end)
  int64_t first = 0;           // the first source position of the copy (a rank's slice start; else 0)
  int64_t start = 0;           // first source position to write (after --resume)
  int64_t base = 0;            // added to each source index (--append: the destination's next index)
  int64_t block_rows = 0;
  bool drop_first = false;                         // --replace of an existing destination
  bool exists = false;                             // the destination dataset exists (and is kept)
  std::string watermark_key = "ingest_watermark";  // the resume point's metadata key (per rank)
};

// Decides what the copy does. Throws ConflictError (exit 5) for a destination with another
// spec (unless --replace), a non-empty one without --append/--replace/--resume, or a --resume
// whose recorded source differs; UsageError for contradictory flags. With a shard, rank R of W
// copies source positions ingest::slice_rows(rows, shard) at their own indices into a
// destination the other ranks may be filling at the same time (each rank resumable on its own,
// ingest::sharded_start); not with --append or --replace.
CopyPlan plan_copy(const backends::DatasetInfo& src, const std::optional<backends::DatasetInfo>& dst,
                   const CopyRequest& request);

// Dataset metadata keys that describe one load rather than the data (resume points); a copy
// does not carry them over and `check` does not compare them.
bool is_bookkeeping_key(const std::string& key);

// The first row of batch that a store of kind `dst_kind` cannot keep bit for bit, as one line
// naming the row and the field, or nullopt. When lossy_metadata is set, rows whose only
// problem is their metadata get it dropped instead (counted in *lossy_rows).
std::optional<std::string> make_exact(const std::string& dst_kind, const std::string& dataset,
                                      backends::RowBatch& batch, bool lossy_metadata, int64_t* lossy_rows);

struct CopyStats {
  int64_t rows = 0;        // rows written by this run
  int64_t bytes = 0;       // their sample and label bytes
  int64_t lossy_rows = 0;  // rows written without their metadata (--allow-lossy metadata)
};

// Creates (or drops and creates) the destination and writes source positions
// [plan.start, plan.total) with one thread per writer. The source is read on one thread.
// Throws UsageError naming the first row the destination cannot hold (nothing of its block is
// written), Error if the source changed under the copy.
CopyStats run_copy(backends::Backend& src, backends::Backend& dst, const std::vector<backends::Backend*>& writers,
                   const CopyPlan& plan, const CopyRequest& request, const std::function<void(int64_t)>& progress);

// Reads every source row and checks that the destination can hold it, without writing: the
// first problem, or nullopt. For --dry-run.
std::optional<std::string> scan_exactness(backends::Backend& src, const CopyPlan& plan, const CopyRequest& request,
                                          const std::function<void(int64_t)>& progress);

}  // namespace vstash::transfer
