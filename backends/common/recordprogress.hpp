// SPDX-License-Identifier: MIT
// Training progress over a store of small records (Qdrant points, Pinecone records): one
// record per (run, rank) under the key "RUN#RANK", which each store maps to its own id. Its
// fields are flat (run, rank, epoch, step, metrics as JSON text, updated_at), so any store
// that keeps flat metadata can hold them; the reader also takes metrics as a JSON object and
// numbers as floats (older Qdrant points, Pinecone's doubles).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "backends/progressstore.hpp"
#include "backends/storetypes.hpp"

namespace vstash::backends::records {

// How one store keeps progress records.
struct ProgressRecords {
  // Writes the record `key` with these fields, replacing it.
  std::function<void(const std::string& key, const json& fields)> put;
  // The fields of the records of `run` (of every run when empty); others are skipped here.
  std::function<std::vector<json>(const std::string& run)> list;
  // Waits until this process's writes are visible to readers (eventually consistent stores).
  std::function<void()> settle = [] {};
};

// "RUN#RANK".
std::string progress_key(const std::string& run, int64_t rank);

class RecordProgress final : public ProgressStore {
 public:
  explicit RecordProgress(ProgressRecords records) : m_records(std::move(records)) {}

  void record_progress(const ProgressRecord& record) override;
  std::vector<ProgressRecord> list_progress(const std::string& run) override;

 private:
  ProgressRecords m_records;
};

}  // namespace vstash::backends::records
