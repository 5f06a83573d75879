// SPDX-License-Identifier: MIT
// The local store's writer connection and reader pool (localconnections.hpp).
#include "backends/local/localconnections.hpp"

#include <fmt/format.h>

#include "src/errors.hpp"

namespace vstash::backends::local {

namespace {

// Readers kept open for reuse; more may exist while many threads read at once.
constexpr size_t k_max_idle_readers = 8;

// Whether the store's -wal file holds frames (a writer is active, or one crashed).
bool wal_has_content(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path + "-wal", ec);
  return !ec && n > 0;
}

// The first connection of a read-only store; sets the mode later readers open with.
// SQLite reads a WAL store read-only through its -shm file, which it must create when the
// last writer closed cleanly and removed it; in a directory this process may not write it
// cannot. With no -wal content there is nothing for those files to add, so the store is
// then read as immutable.
std::unique_ptr<Connection> open_for_reading(const std::string& path, OpenMode& mode) {
  const char* probe = "SELECT count(*) FROM sqlite_master";
  mode = OpenMode::read_only;
  auto conn = std::make_unique<Connection>(path, mode);
  int rc = sqlite3_exec(conn->handle(), probe, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK && ((rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_READONLY) && !wal_has_content(path)) {
    mode = OpenMode::immutable;
    conn = std::make_unique<Connection>(path, mode);
    rc = sqlite3_exec(conn->handle(), probe, nullptr, nullptr, nullptr);
  }
  if (rc != SQLITE_OK) {
    conn->fail(rc, "opening the store read-only");
  }
  configure_connection(*conn);
  auto tables =
      conn->prepare("SELECT count(*), count(*) FILTER (WHERE name = 'meta') FROM sqlite_master WHERE type = 'table'");
  if (!tables.step() || tables.int_at(0) == 0) {
    // An empty file: another process is creating the store (its tables not committed yet).
    throw NotFoundError(fmt::format("{}: no local store here (check the profile's path)", path));
  }
  if (tables.int_at(1) != 1) {
    throw Error(fmt::format("{}: not a vstash local store (no meta table)", path));
  }
  if (const int64_t v = read_layout_version(*conn); v > k_layout_version) {
    throw Error(fmt::format("{}: store layout version {} is newer than this vstash supports ({}); upgrade vstash", path,
                            v, k_layout_version));
  } else if (v < 2) {  // layout 2 is read as it is (no implicit rows: localschema.cpp)
    throw Error(
        fmt::format("{}: store layout version {} must be migrated to {} first: run `vstash compact` "
                    "(a command that writes) with this store",
                    path, v, k_layout_version));
  }
  return conn;
}

}  // namespace

Connections::Connections(std::string path, Access access) : m_path(std::move(path)) {
  if (access == Access::read_only) {
    m_readers.push_back(open_for_reading(m_path, m_read_mode));
    return;
  }
  m_writer = std::make_unique<Connection>(m_path);
  ensure_schema(*m_writer);
}

void Connections::require_writer() const {
  if (!m_writer) {
    throw Error(fmt::format("{}: the store was opened read-only for a command that only reads", m_path));
  }
}

void Connections::sweep_once() {
  if (m_swept) {
    return;
  }
  std::vector<std::pair<int64_t, int64_t>> current;
  for (const auto& r : all_datasets(*m_writer)) {
    current.emplace_back(r.id, r.generation);
  }
  sweep_segments(m_path, current);
  m_swept = true;
}

void Connections::unlink_obsolete() {
  std::error_code ec;
  for (const auto& file : m_obsolete) {
    std::filesystem::remove(file, ec);
  }
  m_obsolete.clear();
}

Connections::ReaderLease::ReaderLease(Connections& c) : owner(c) {
  {
    std::lock_guard lock(owner.m_pool_mutex);
    if (!owner.m_readers.empty()) {
      conn = std::move(owner.m_readers.back());
      owner.m_readers.pop_back();
    }
  }
  if (!conn) {
    conn = std::make_unique<Connection>(owner.m_path, owner.m_read_mode);
    configure_connection(*conn);
  }
}

Connections::ReaderLease::~ReaderLease() {
  std::lock_guard lock(owner.m_pool_mutex);
  if (owner.m_readers.size() < k_max_idle_readers) {
    owner.m_readers.push_back(std::move(conn));
  }
}

}  // namespace vstash::backends::local
