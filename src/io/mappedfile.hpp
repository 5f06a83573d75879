// SPDX-License-Identifier: MIT
// A read-only mapping of part of a file, shared by the arrays that view it (Array::view).
// Mapping instead of reading spares an ingest a copy of every byte and the allocation of
// every block. The one hazard of a mapping is a file truncated by another process while it
// is mapped: touching the lost pages raises SIGBUS. A process-wide handler turns that into
// the one-line error and exit code a short read would give ("FILE: truncated while being
// read", exit 2) instead of a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace vstash::io {

class MappedFile {
 public:
  // Maps length bytes of fd from offset (any offset: the mapping starts at the page below).
  // Null if the system refuses (the caller then reads instead); length must be > 0.
  static std::shared_ptr<const MappedFile> map(int fd, const std::string& path, uint64_t offset, size_t length);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {m_data, m_length}; }
  // Drops the pages wholly inside bytes [offset, offset + length) from this process's
  // memory (MADV_DONTNEED): a reader that has consumed part of a large file keeps its
  // resident set bounded. Harmless to data: touching them again reads them back from the file.
  void release(size_t offset, size_t length) const;

 private:
  MappedFile() = default;

  void* m_map = nullptr;  // what mmap returned (page aligned)
  size_t m_map_length = 0;
  const std::byte* m_data = nullptr;  // offset's byte
  size_t m_length = 0;
  int m_guard_slot = -1;  // entry in the SIGBUS handler's table, -1 if none was free
};

}  // namespace vstash::io
