// SPDX-License-Identifier: MIT
#include "backends/local/localsegments.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

namespace vstash::backends::local {

namespace {

std::string errno_text() { return std::strerror(errno); }

// fsync of a directory, so that a file created in it survives a power loss.
void sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Parses "<id>-<generation>.rows".
bool parse_segment_name(const std::string& name, int64_t& id, int64_t& generation) {
  constexpr std::string_view suffix = ".rows";
  if (!name.ends_with(suffix)) {
    return false;
  }
  const char* p = name.data();
  const char* end = name.data() + name.size() - suffix.size();
  auto r = std::from_chars(p, end, id);
  if (r.ec != std::errc() || r.ptr == end || *r.ptr != '-') {
    return false;
  }
  r = std::from_chars(r.ptr + 1, end, generation);
  return r.ec == std::errc() && r.ptr == end;
}

}  // namespace

std::string segment_dir(const std::string& store_path) { return store_path + ".segments"; }

std::string segment_path(const std::string& store_path, int64_t dataset_id, int64_t generation) {
  return fmt::format("{}/{}-{}.rows", segment_dir(store_path), dataset_id, generation);
}

SegmentWriter::SegmentWriter(const std::string& path, size_t record_bytes, bool fresh)
    : m_path(path), m_record_bytes(record_bytes) {
  const auto dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  const bool made_dir = std::filesystem::create_directory(dir, ec);
  if (ec) {
    throw Error(fmt::format("{}: cannot create directory: {}", dir.string(), ec.message()));
  }
  if (made_dir) {
    sync_dir(dir.parent_path().empty() ? "." : dir.parent_path().string());
  }
  const bool existed = ::access(path.c_str(), F_OK) == 0;
  m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (fresh ? O_TRUNC : 0), 0644);
  if (m_fd < 0) {
    throw Error(fmt::format("{}: cannot open segment file: {}", path, errno_text()));
  }
  if (!existed) {
    sync_dir(dir.string());
  }
}

SegmentWriter::~SegmentWriter() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

void SegmentWriter::write(int64_t first, std::span<const std::byte> bytes) {
  auto offset = static_cast<off_t>(first) * static_cast<off_t>(m_record_bytes);
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(m_fd, bytes.data(), std::min<size_t>(bytes.size(), size_t{1} << 30), offset);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw Error(fmt::format("{}: cannot write rows: {}", m_path, errno == ENOSPC ? "disk full" : errno_text()));
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
    offset += n;
  }
}

void SegmentWriter::read(int64_t slot, std::span<std::byte> out) const {
  auto offset = static_cast<off_t>(slot) * static_cast<off_t>(m_record_bytes);
  while (!out.empty()) {
    const ssize_t n = ::pread(m_fd, out.data(), out.size(), offset);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      throw Error(fmt::format("{}: cannot read slot {}: {}", m_path, slot, n == 0 ? "file too short" : errno_text()));
    }
    out = out.subspan(static_cast<size_t>(n));
    offset += n;
  }
}

void SegmentWriter::sync() {
  if (::fdatasync(m_fd) != 0) {
    throw Error(fmt::format("{}: cannot sync rows to disk: {}", m_path, errno_text()));
  }
}

std::shared_ptr<const SegmentMap> SegmentMap::open(const std::string& path, size_t record_bytes, int64_t slots) {
  std::shared_ptr<SegmentMap> m(new SegmentMap());
  m->m_record_bytes = record_bytes;
  m->m_slots = slots;
  const size_t need = static_cast<size_t>(slots) * record_bytes;
  if (need == 0) {
    return m;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      throw SegmentGone(fmt::format("{}: segment file is gone", path));
    }
    throw Error(fmt::format("{}: cannot open segment file: {}", path, errno_text()));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < need) {
    ::close(fd);
    throw Error(fmt::format("{}: segment file holds fewer rows than the store committed ({} slots): store is corrupt",
                            path, slots));
  }
  const auto length = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    throw Error(fmt::format("{}: cannot map segment file: {}", path, errno_text()));
  }
  m->m_data = static_cast<const std::byte*>(p);
  m->m_length = length;
  m->m_slots = static_cast<int64_t>(length / std::max<size_t>(record_bytes, 1));
  return m;
}

SegmentMap::~SegmentMap() {
  if (m_data) {
    ::munmap(const_cast<std::byte*>(m_data), m_length);
  }
}

void SegmentMap::advise_sequential() const {
  if (m_data) {
    ::madvise(const_cast<std::byte*>(m_data), m_length, MADV_WILLNEED);
  }
}

void sweep_segments(const std::string& store_path, const std::vector<std::pair<int64_t, int64_t>>& current) {
  std::error_code ec;
  std::filesystem::directory_iterator it(segment_dir(store_path), ec);
  if (ec) {
    return;
  }
  for (const auto& entry : it) {
    int64_t id = 0;
    int64_t generation = 0;
    const std::string name = entry.path().filename().string();
    if (!parse_segment_name(name, id, generation)) {
      continue;
    }
    if (std::find(current.begin(), current.end(), std::pair(id, generation)) == current.end()) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
}

}  // namespace vstash::backends::local
