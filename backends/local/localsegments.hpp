// SPDX-License-Identifier: MIT
// The local store's row files (layout 2): per dataset one file of fixed-width records,
// STORE.segments/<dataset id>-<generation>.rows, record s (the row's "slot") at byte
// s * record_bytes, holding the sample bytes then the label bytes. SQLite names which
// generation is current and how many slots are committed; nothing past that count is ever
// read, and no committed slot is ever written again (see localbackend.cpp, commit protocol).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "src/errors.hpp"

namespace vstash::backends::local {

// The file a dataset's rows of one generation live in.
std::string segment_path(const std::string& store_path, int64_t dataset_id, int64_t generation);
std::string segment_dir(const std::string& store_path);

// A segment file named by a reader's snapshot that a compaction has since replaced and
// removed: the read starts again in a new snapshot.
class SegmentGone : public Error {
 public:
  using Error::Error;
};

// Appends records to one segment file; a writer opens it inside its SQLite write
// transaction, so only one process writes a dataset's file at a time.
class SegmentWriter {
 public:
  // Opens (creates; truncates when `fresh`) the file; a new file's directory entry is synced.
  SegmentWriter(const std::string& path, size_t record_bytes, bool fresh = false);
  ~SegmentWriter();
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  // Writes whole records from slot `first` on (bytes.size() a multiple of record_bytes).
  void write(int64_t first, std::span<const std::byte> bytes);
  // Reads one committed record (count records) into out.
  void read(int64_t slot, std::span<std::byte> out) const;
  // fdatasync: the records written are durable before SQLite's commit names them.
  void sync();
  const std::string& path() const { return m_path; }

 private:
  std::string m_path;
  size_t m_record_bytes;
  int m_fd = -1;
};

// A read-only mapping of a segment file (the whole file at the time it was mapped).
class SegmentMap {
 public:
  // Maps path; at least `slots` records must be there. SegmentGone when the file is missing.
  static std::shared_ptr<const SegmentMap> open(const std::string& path, size_t record_bytes, int64_t slots);
  ~SegmentMap();
  SegmentMap(const SegmentMap&) = delete;
  SegmentMap& operator=(const SegmentMap&) = delete;

  const std::byte* record(int64_t slot) const { return m_data + static_cast<size_t>(slot) * m_record_bytes; }
  int64_t slots() const { return m_slots; }
  // Asks the kernel to read ahead (a scan over every slot) or not (a random gather).
  void advise_sequential() const;

 private:
  SegmentMap() = default;
  const std::byte* m_data = nullptr;
  size_t m_length = 0;
  size_t m_record_bytes = 0;
  int64_t m_slots = 0;
};

// Unlinks the files of STORE.segments that are not a current (dataset id, generation) pair:
// what a crash left between writing a new generation and committing it, or between a commit
// and the unlink of the replaced file. Called under the write lock.
void sweep_segments(const std::string& store_path, const std::vector<std::pair<int64_t, int64_t>>& current);

}  // namespace vstash::backends::local
