// SPDX-License-Identifier: MIT
// Dataset records kept apart per writer, for stores whose record has no atomic update (Qdrant,
// Pinecone): when several processes write one dataset at once (the ranks of a sharded load,
// each named by RowStore::set_writer), a named writer never rewrites the shared record; it
// keeps its own part (its next_index and the metadata and extra keys it changed) in a record
// of its own, which only it writes. Readers see the shared record with every part folded in:
// next_index and integer extra counters are the highest of any, metadata and other extra keys
// are overridden by the parts in writer order (ranks set distinct keys: their resume points).
// The shared record carries extra "writers": true while parts exist, so a dataset written by
// one process costs no more requests than before. The first change by an unnamed writer (one
// process again) folds the parts back into the shared record and removes them.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/common/catalog.hpp"

namespace vstash::backends::catalog {

struct WriterPart {
  std::string writer;
  int64_t next_index = 0;
  json metadata = json::object();  // the dataset metadata keys this writer set
  json extra = json::object();     // the record's extra keys this writer changed
};

// The record with the parts folded in (see above); its version stays the shared record's.
DatasetRecord fold(DatasetRecord shared, const std::vector<WriterPart>& parts);
// The writer's part after it replaced `seen` with `next`: next_index raised, and the metadata
// and extra keys that differ from `seen` recorded.
WriterPart with_change(WriterPart own, const DatasetRecord& seen, const DatasetRecord& next);
// A part's stored JSON form {"writer", "next_index", "metadata", "extra"} and back; a record
// that is not a part throws Error naming `what`.
json part_to_json(const WriterPart& part);
WriterPart part_from_json(const json& j, const std::string& what);
// Whether the shared record says parts exist.
bool has_parts(const DatasetRecord& record);

// DatasetRecords over a store's shared records and writer parts: the store implements the
// shared_* operations (as DatasetRecords would) and the part operations; get, list, insert,
// compare_and_set and remove here apply the rules above.
class SplitRecords : public DatasetRecords {
 public:
  // "" (the default): the single writer, which writes the shared record as before.
  void set_writer(const std::string& writer);

  std::optional<DatasetRecord> get(const std::string& name) override;
  std::vector<DatasetRecord> list() override;
  bool insert(const DatasetRecord& record) override;
  bool compare_and_set(const DatasetRecord& seen, const DatasetRecord& next) override;
  bool remove(const std::string& name) override;

 protected:
  virtual std::optional<DatasetRecord> shared_get(const std::string& name) = 0;
  virtual std::vector<DatasetRecord> shared_list() = 0;
  virtual bool shared_insert(const DatasetRecord& record) = 0;
  virtual bool shared_compare_and_set(const DatasetRecord& seen, const DatasetRecord& next) = 0;
  virtual bool shared_remove(const std::string& name) = 0;
  // The dataset's parts (none when there are none yet), writing one (replacing the writer's
  // earlier one), removing them all.
  virtual std::vector<WriterPart> load_parts(const std::string& name) = 0;
  virtual void save_part(const std::string& name, const WriterPart& part) = 0;
  virtual void drop_parts(const std::string& name) = 0;

 private:
  DatasetRecord view(DatasetRecord shared);
  // Sets the shared record's "writers" flag (a named writer's first change).
  void mark_shared(DatasetRecord seen);
  // An unnamed writer's change to a record with parts: the parts folded into the shared record.
  bool fold_back(const DatasetRecord& seen, const DatasetRecord& next);
  std::optional<WriterPart> own(const std::string& name);
  void keep_own(const std::string& name, const WriterPart& part);

  std::mutex m_mutex;
  std::string m_writer;
  std::map<std::string, WriterPart> m_own;  // this writer's parts, by dataset (it alone writes them)
};

}  // namespace vstash::backends::catalog
