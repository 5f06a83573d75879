// SPDX-License-Identifier: MIT
// Redis's progress store: P progress:{RUN} is a hash of rank -> the worker's latest report
// (JSON: epoch, step, metrics, updated_at), P runs the set of run names; one MULTI per report.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "backends/progressstore.hpp"
#include "backends/redis/redisstore.hpp"

namespace vstash::backends::redis {

class RedisProgress final : public ProgressStore {
 public:
  // conn is the backend's one connection: every call holds its mutex.
  RedisProgress(Connection& conn, const StoreConfig& cfg, std::mutex& mutex);
  void record_progress(const ProgressRecord& record) override;
  std::vector<ProgressRecord> list_progress(const std::string& run) override;

 private:
  Connection& m_conn;
  const StoreConfig& m_cfg;
  std::mutex& m_mutex;
};

}  // namespace vstash::backends::redis
