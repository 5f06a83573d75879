// SPDX-License-Identifier: MIT
// The local store's connections and the transactions run on them: one writer connection
// behind a mutex (SQLite allows one writer per file; other processes wait up to
// k_busy_timeout_ms, then RetryableError) and a pool of reader connections, one per
// concurrent reading thread. Shared by the row store, the checkpoints and the progress
// reports of one backend.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backends/local/localstore.hpp"

namespace vstash::backends::local {

class Connections {
 public:
  // read_write opens (creating when missing) and migrates the store; read_only opens an
  // existing store without writing anything (localconnections.cpp says how).
  Connections(std::string path, Access access);
  Connections(const Connections&) = delete;
  Connections& operator=(const Connections&) = delete;

  const std::string& path() const { return m_path; }
  // Throws Error when the store was opened read-only.
  void require_writer() const;

  // Runs f(Connection&) in a write transaction on the writer connection. Segment files f
  // adds to obsolete() are unlinked after the commit; the first write of this object sweeps
  // files of generations no dataset names (what a crash left).
  template <class F>
  std::invoke_result_t<F&, Connection&> write(F&& f) {
    std::lock_guard lock(m_write_mutex);
    require_writer();
    m_obsolete.clear();
    Transaction txn(*m_writer, true);
    sweep_once();
    if constexpr (std::is_void_v<std::invoke_result_t<F&, Connection&>>) {
      f(*m_writer);
      txn.commit();
      unlink_obsolete();
    } else {
      auto result = f(*m_writer);
      txn.commit();
      unlink_obsolete();
      return result;
    }
  }

  // write() whose commit also survives power loss (synchronous=FULL for this transaction).
  template <class F>
  std::invoke_result_t<F&, Connection&> write_durable(F&& f) {
    std::lock_guard lock(m_write_mutex);
    require_writer();
    m_writer->exec("PRAGMA synchronous=FULL");
    try {
      Transaction txn(*m_writer, true);
      auto result = f(*m_writer);
      txn.commit();
      m_writer->exec("PRAGMA synchronous=NORMAL");
      return result;
    } catch (...) {
      m_writer->exec("PRAGMA synchronous=NORMAL");
      throw;
    }
  }

  // Runs f(Connection&) in a read transaction on a pooled reader connection. A snapshot
  // naming a segment file that a compaction has since removed is retried in a new snapshot
  // (which names the new file).
  template <class F>
  std::invoke_result_t<F&, Connection&> read(F&& f) {
    ReaderLease lease(*this);
    for (int attempt = 0;; ++attempt) {
      try {
        Transaction txn(*lease.conn, false);
        auto result = f(*lease.conn);
        txn.commit();
        return result;
      } catch (const SegmentGone&) {
        if (attempt >= 8) {
          throw;
        }
      }
    }
  }

  // Segment files to unlink once the running write() commits; only inside write().
  std::vector<std::string>& obsolete() { return m_obsolete; }

 private:
  void sweep_once();
  void unlink_obsolete();

  struct ReaderLease {
    explicit ReaderLease(Connections& c);
    ~ReaderLease();
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;
    Connections& owner;
    std::unique_ptr<Connection> conn;
  };

  std::string m_path;
  std::mutex m_write_mutex;
  std::unique_ptr<Connection> m_writer;         // null when opened read-only
  OpenMode m_read_mode = OpenMode::read_write;  // how reader connections open
  std::mutex m_pool_mutex;
  std::vector<std::unique_ptr<Connection>> m_readers;
  std::vector<std::string> m_obsolete;  // segment files to unlink after the write commits
  bool m_swept = false;
};

}  // namespace vstash::backends::local
