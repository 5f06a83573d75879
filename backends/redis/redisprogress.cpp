// SPDX-License-Identifier: MIT
// Training progress in Redis (layout in redisprogress.hpp).
#include "backends/redis/redisprogress.hpp"

#include <fmt/format.h>
#include <algorithm>

#include "backends/common/rowcodec.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

namespace {
std::string runs_key(const StoreConfig& cfg) { return cfg.prefix + "runs"; }
std::string progress_key(const StoreConfig& cfg, const std::string& run) {
  return fmt::format("{}progress:{{{}}}", cfg.prefix, key_escape(run));
}
}  // namespace

RedisProgress::RedisProgress(Connection& conn, const StoreConfig& cfg, std::mutex& mutex)
    : m_conn(conn), m_cfg(cfg), m_mutex(mutex) {}

void RedisProgress::record_progress(const ProgressRecord& rec) {
  std::lock_guard lock(m_mutex);
  Connection& conn = m_conn;
  const StoreConfig& cfg = m_cfg;
  if (rec.run.empty()) {
    throw UsageError("progress: run name is empty");
  }
  const json j = {{"epoch", rec.epoch},
                  {"step", rec.step},
                  {"metrics", metrics_to_json(rec.metrics)},
                  {"updated_at", now_rfc3339()}};
  const std::string key = progress_key(cfg, rec.run);
  const std::string rank = std::to_string(rec.rank);
  const std::string text = j.dump();
  conn.append({"MULTI"});
  conn.append({"HSET", key, rank, text});
  append_expire(conn, cfg, key);
  conn.append({"SADD", runs_key(cfg), rec.run});
  append_expire(conn, cfg, runs_key(cfg));
  conn.append({"EXEC"});
  conn.flush();
}

std::vector<ProgressRecord> RedisProgress::list_progress(const std::string& run) {
  std::lock_guard lock(m_mutex);
  Connection& conn = m_conn;
  const StoreConfig& cfg = m_cfg;
  std::vector<std::string> runs;
  if (!run.empty()) {
    runs.push_back(run);
  } else {
    runs = string_array(*conn.command({"SMEMBERS", runs_key(cfg)}));
  }
  std::sort(runs.begin(), runs.end());
  for (const auto& r : runs) {
    conn.append({"HGETALL", progress_key(cfg, r)});
  }
  auto replies = conn.flush();
  std::vector<ProgressRecord> out;
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto& all = *replies[i];
    std::vector<ProgressRecord> recs;
    for (size_t f = 0; f + 1 < array_size(all); f += 2) {
      const json j = json::parse(as_view(element(all, f + 1)));
      ProgressRecord p;
      p.run = runs[i];
      p.rank = as_int(element(all, f));
      p.epoch = j.at("epoch").get<int64_t>();
      p.step = j.at("step").get<int64_t>();
      p.metrics = metrics_from_json(j.at("metrics"));
      p.updated_at = j.at("updated_at").get<std::string>();
      recs.push_back(std::move(p));
    }
    std::sort(recs.begin(), recs.end(), [](const auto& a, const auto& b) { return a.rank < b.rank; });
    out.insert(out.end(), recs.begin(), recs.end());
  }
  return out;
}

}  // namespace vstash::backends::redis
