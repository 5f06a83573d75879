// SPDX-License-Identifier: MIT
// Atomic output files: write to a temporary sibling, fsync, rename over the target. If the
// writer is destroyed without commit() the temporary is removed and the target is untouched,
// so a failed command never leaves a half-written output.
#pragma once

#include <cstdio>
#include <string>

namespace vstash::io {

class AtomicFile {
 public:
  explicit AtomicFile(std::string target);  // throws UsageError if the directory is not writable
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::string& temp_path() const { return m_temp; }
  std::FILE* stream();  // opened lazily in binary mode
  void write(const void* data, size_t size);
  // flush, fsync, close, rename, then fsync the directory (sync_dir false: the caller
  // does, once for several files, with sync_parent_directory).
  void commit(bool sync_dir = true);

 private:
  std::string m_target;
  std::string m_temp;
  std::FILE* m_stream = nullptr;
  bool m_committed = false;
};

// fsync of target's directory: makes the renames into it durable. Errors are ignored (some
// filesystems refuse fsync on directories).
void sync_parent_directory(const std::string& target);

}  // namespace vstash::io
