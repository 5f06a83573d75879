// SPDX-License-Identifier: MIT
// Checkpoints and training progress as records of the home index: the store's CheckpointStore
// and ProgressStore, held by the backend and returned from its checkpoints() and progress().
#pragma once

#include <string>
#include <vector>

#include "backends/checkpointstore.hpp"
#include "backends/common/chunkedcheckpoints.hpp"
#include "backends/pinecone/pineconeindexes.hpp"
#include "backends/progressstore.hpp"

namespace vstash::backends::pinecone {

// The records of backends/common/chunkedcheckpoints in namespace __vstash_checkpoints__.
class PineconeCheckpoints final : public CheckpointStore {
 public:
  explicit PineconeCheckpoints(Indexes& indexes);

  std::string save_checkpoint(const Checkpoint& checkpoint) override;
  Checkpoint load_checkpoint(const std::string& path) override;
  std::vector<CheckpointInfo> list_checkpoints(const std::string& model) override;
  bool delete_checkpoint(const std::string& path) override;

 private:
  Indexes& m_indexes;
  chunked::RecordStore m_store;
};

// One record per (run, rank) in namespace __vstash_progress__, id "RUN#RANK".
class PineconeProgress final : public ProgressStore {
 public:
  explicit PineconeProgress(Indexes& indexes) : m_indexes(indexes) {}

  void record_progress(const ProgressRecord& record) override;
  std::vector<ProgressRecord> list_progress(const std::string& run) override;

 private:
  Indexes& m_indexes;
};

}  // namespace vstash::backends::pinecone
