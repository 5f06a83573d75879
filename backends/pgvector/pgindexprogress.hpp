// SPDX-License-Identifier: MIT
// Progress of a CREATE INDEX, read from pg_stat_progress_create_index over a connection of
// its own while the building session waits on the statement (an HNSW build over millions of
// rows takes minutes; without this the terminal would sit silent).
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "backends/backend.hpp"
#include "backends/pgvector/pgconnection.hpp"

namespace vstash::backends::pgvector {

class IndexBuildWatcher {
 public:
  // Starts polling the build run by the backend process builder_pid; progress is called
  // from the watcher's thread. Progress is best effort: if the watcher cannot connect or
  // read, it stays quiet and the build goes on.
  IndexBuildWatcher(ConnectionSettings settings, int builder_pid, IndexProgressFn progress);
  // Stops polling; after a successful build (finished()), reports the "done" phase last.
  ~IndexBuildWatcher();
  IndexBuildWatcher(const IndexBuildWatcher&) = delete;
  IndexBuildWatcher& operator=(const IndexBuildWatcher&) = delete;
  void finished() { m_finished = true; }

 private:
  void poll();

  ConnectionSettings m_settings;
  int m_pid;
  IndexProgressFn m_progress;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_stop = false;
  bool m_finished = false;
  IndexProgress m_last;
  std::thread m_thread;
};

}  // namespace vstash::backends::pgvector
