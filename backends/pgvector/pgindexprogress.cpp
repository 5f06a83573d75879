// SPDX-License-Identifier: MIT
#include "backends/pgvector/pgindexprogress.hpp"

#include <fmt/format.h>
#include <chrono>

namespace vstash::backends::pgvector {

namespace {
// How often the view is read: often enough for a smooth bar, rare enough to cost the
// server nothing next to the build.
constexpr auto k_poll_interval = std::chrono::milliseconds(200);
}  // namespace

IndexBuildWatcher::IndexBuildWatcher(ConnectionSettings settings, int builder_pid, IndexProgressFn progress)
    : m_settings(std::move(settings)), m_pid(builder_pid), m_progress(std::move(progress)) {
  if (m_progress) {
    m_thread = std::thread([this] { poll(); });
  }
}

IndexBuildWatcher::~IndexBuildWatcher() {
  {
    std::lock_guard lock(m_mutex);
    m_stop = true;
  }
  m_wake.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
  }
  if (m_progress && m_finished) {
    try {
      m_progress({"done", m_last.total, m_last.total});
    } catch (...) {  // NOLINT(bugprone-empty-catch): a progress display never fails the build
    }
  }
}

void IndexBuildWatcher::poll() {
  try {
    pqxx::connection conn(build_conninfo(m_settings));
    // Tuples for HNSW and IVFFlat's loading phases, blocks for the heap scan, else neither.
    const std::string sql = fmt::format(
        "SELECT phase, COALESCE(NULLIF(tuples_total, 0), blocks_total, 0), "
        "CASE WHEN tuples_total > 0 THEN tuples_done ELSE COALESCE(blocks_done, 0) END "
        "FROM pg_stat_progress_create_index WHERE pid = {}",
        m_pid);
    std::unique_lock lock(m_mutex);
    while (!m_stop) {
      lock.unlock();
      pqxx::nontransaction tx(conn);
      const pqxx::result r = tx.exec(sql);
      lock.lock();
      if (!r.empty() && !m_stop) {
        IndexProgress p{r[0][0].as<std::string>(), r[0][2].as<int64_t>(), r[0][1].as<int64_t>()};
        m_last = p;
        lock.unlock();
        m_progress(p);
        lock.lock();
      }
      m_wake.wait_for(lock, k_poll_interval, [&] { return m_stop; });
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): best effort; the build itself reports its errors
  }
}

}  // namespace vstash::backends::pgvector
