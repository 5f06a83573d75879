// SPDX-License-Identifier: MIT
// The progress store: each training worker's latest report of a run.
#pragma once

#include <string>
#include <vector>

#include "backends/storetypes.hpp"

namespace vstash::backends {

class ProgressStore {
 public:
  virtual ~ProgressStore() = default;

  // Records (run, rank)'s latest state, replacing the previous one.
  virtual void record_progress(const ProgressRecord& record) = 0;
  // Every worker's latest record of run (all runs if empty).
  virtual std::vector<ProgressRecord> list_progress(const std::string& run) = 0;
};

}  // namespace vstash::backends
