// SPDX-License-Identifier: MIT
// The checkpoint store: a model's state per epoch, saved and loaded whole. The implementation
// over a store's small records (backends/common/chunkedcheckpoints.hpp) serves any store; a
// store replaces it where it has something better (a SQL transaction, a Redis script).
#pragma once

#include <string>
#include <vector>

#include "backends/storetypes.hpp"

namespace vstash::backends {

class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;

  // Saves atomically (readers see all of it or none) and returns MODEL@EPOCH. An existing
  // epoch is replaced only when checkpoint.overwrite is set; otherwise the save throws
  // ConflictError and leaves the stored checkpoint (arrays, metrics) as it was. Of several
  // processes saving the same new epoch at once without overwrite, exactly one succeeds.
  // MODEL@latest moves only forward in epoch, even when several processes save at once.
  virtual std::string save_checkpoint(const Checkpoint& checkpoint) = 0;
  // Accepts MODEL@EPOCH or MODEL@latest. Throws NotFoundError.
  virtual Checkpoint load_checkpoint(const std::string& path) = 0;
  // Every checkpoint of model (all models if empty), by model then epoch ascending.
  virtual std::vector<CheckpointInfo> list_checkpoints(const std::string& model) = 0;
  // Returns false if it did not exist. Deleting the latest moves latest to the next lower epoch.
  virtual bool delete_checkpoint(const std::string& path) = 0;
};

}  // namespace vstash::backends
