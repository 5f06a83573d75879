// SPDX-License-Identifier: MIT
// Checkpoint retention: which of a model's checkpoints `checkpoint save --keep N
// --keep-best METRIC:min|max` deletes after saving.
//
// A checkpoint is kept if ANY rule keeps it:
//   - it has the highest epoch listed (the latest is never deleted);
//   - --keep N: it is among the N highest epochs;
//   - --keep-best METRIC:min|max: it has the best value of METRIC (ties: the higher epoch);
//     checkpoints without the metric, or with NaN, are never "best".
// Everything else is deleted. With neither rule set nothing is deleted.
//
// Concurrent savers are safe: a listing that misses a newer checkpoint only makes the
// N highest epochs it sees older than the real ones, so it never deletes something a fresh
// listing would keep, apart from a best that it could not see (which it does not delete either).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::training {

struct RetentionPolicy {
  std::optional<int64_t> keep_last;  // --keep N (N >= 1)
  std::optional<std::string> best_metric;
  bool best_is_max = false;  // METRIC:max; METRIC:min otherwise

  bool empty() const { return !keep_last && !best_metric; }
  // keep <= 0 means "not set"; keep_best "" means not set, else "METRIC:min" or "METRIC:max".
  // Throws UsageError for a malformed --keep-best.
  static RetentionPolicy parse(int64_t keep, const std::string& keep_best);
};

struct RetentionPlan {
  std::vector<backends::CheckpointInfo> keep;    // epoch ascending
  std::vector<backends::CheckpointInfo> remove;  // epoch ascending
};

// Decides over one model's checkpoints (as list_checkpoints returns them).
RetentionPlan plan_retention(const std::vector<backends::CheckpointInfo>& checkpoints, const RetentionPolicy& policy);

// Lists model's checkpoints, plans, and deletes the planned ones through delete_checkpoint.
// Returns the plan; checkpoints another process deleted first are not an error.
RetentionPlan apply_retention(backends::Backend& backend, const std::string& model, const RetentionPolicy& policy);

}  // namespace vstash::training
