// SPDX-License-Identifier: MIT
// AtomicFile: a temporary sibling that becomes the target only on commit().
#include "src/io/atomicfile.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "src/errors.hpp"

namespace vstash::io {

namespace {

std::atomic<unsigned> g_temp_counter{0};

std::string errno_text(int err) { return std::strerror(err); }

std::filesystem::path parent_dir(const std::string& target) {
  auto dir = std::filesystem::path(target).parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

// fsync of the directory makes the rename itself durable; failure here is not worth failing
// the command for (some filesystems refuse fsync on directories).
void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string target) : m_target(std::move(target)) {
  if (m_target.empty()) {
    throw UsageError("empty output file name");
  }
  const auto dir = parent_dir(m_target);
  const auto base = std::filesystem::path(m_target).filename().string();
  // O_EXCL on a pid+counter name makes the temp ours alone; mode 0666 lets the umask decide
  // the final permissions, as for any other file the user creates.
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate = (dir / fmt::format(".{}.tmp-{}-{}", base, ::getpid(), g_temp_counter++)).string();
    const int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      ::close(fd);
      m_temp = std::move(candidate);
      return;
    }
    if (errno != EEXIST) {
      throw UsageError(
          fmt::format("{}: cannot create a file in \"{}\": {}", m_target, dir.string(), errno_text(errno)));
    }
  }
  throw UsageError(fmt::format("{}: cannot create a temporary file in \"{}\"", m_target, dir.string()));
}

AtomicFile::~AtomicFile() {
  if (m_stream != nullptr) {
    std::fclose(m_stream);
  }
  if (!m_committed && !m_temp.empty()) {
    ::unlink(m_temp.c_str());
  }
}

std::FILE* AtomicFile::stream() {
  if (m_committed) {
    throw Error(fmt::format("{}: write after commit", m_target));
  }
  if (m_stream == nullptr) {
    m_stream = std::fopen(m_temp.c_str(), "wb");
    if (m_stream == nullptr) {
      throw Error(fmt::format("{}: cannot open \"{}\": {}", m_target, m_temp, errno_text(errno)));
    }
  }
  return m_stream;
}

void AtomicFile::write(const void* data, size_t size) {
  std::FILE* f = stream();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) {
    throw Error(fmt::format("{}: write failed: {}", m_target, errno_text(errno)));
  }
}

void AtomicFile::commit(bool sync_dir) {
  if (m_committed) {
    return;
  }
  // The temp may have been written through temp_path() by another library (HDF5); then it
  // is reopened here just to fsync it.
  int fd = -1;
  bool own_fd = false;
  if (m_stream != nullptr) {
    if (std::fflush(m_stream) != 0) {
      throw Error(fmt::format("{}: write failed: {}", m_target, errno_text(errno)));
    }
    fd = ::fileno(m_stream);
  } else {
    fd = ::open(m_temp.c_str(), O_RDONLY | O_CLOEXEC);
    own_fd = true;
  }
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (own_fd && fd >= 0) {
      ::close(fd);
    }
    throw Error(fmt::format("{}: cannot sync: {}", m_target, errno_text(err)));
  }
  if (own_fd) {
    ::close(fd);
  }
  if (m_stream != nullptr) {
    std::FILE* f = m_stream;
    m_stream = nullptr;
    if (std::fclose(f) != 0) {
      throw Error(fmt::format("{}: write failed: {}", m_target, errno_text(errno)));
    }
  }
  if (std::rename(m_temp.c_str(), m_target.c_str()) != 0) {
    throw Error(fmt::format("{}: cannot rename \"{}\" into place: {}", m_target, m_temp, errno_text(errno)));
  }
  m_committed = true;
  if (sync_dir) {
    sync_parent_directory(m_target);
  }
}

void sync_parent_directory(const std::string& target) { sync_directory(parent_dir(target)); }

}  // namespace vstash::io
