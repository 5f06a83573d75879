// SPDX-License-Identifier: MIT
// `vstash copy --checkpoints MODEL` / `--all`: every epoch of a model (arrays, metrics,
// metadata) from one store to another, in epoch order, so the destination's MODEL@latest
// ends where the source's is. Each save is atomic on every store, so after a crash a
// checkpoint is there whole or not at all, and --resume skips the ones already there.
// created_at is the destination's save time (stores set it; the interface cannot carry it).
#pragma once

#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::transfer {

struct CheckpointCopy {
  std::vector<std::string> copied;   // MODEL@EPOCH, in the order saved
  std::vector<std::string> skipped;  // already in the destination (--resume)
  int64_t bytes = 0;                 // array bytes copied
};

enum class ExistingCheckpoint { conflict, overwrite, skip };

// model "" copies every model's. Throws NotFoundError (naming src_label) if the source has none, ConflictError
// (before writing anything) if the destination already has one of them and `existing` is
// conflict. dry_run lists what would be copied and writes nothing.
CheckpointCopy copy_checkpoints(backends::Backend& src, backends::Backend& dst, const std::string& model,
                                ExistingCheckpoint existing, bool dry_run, const std::string& src_label = "source");

}  // namespace vstash::transfer
