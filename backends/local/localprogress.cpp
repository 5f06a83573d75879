// SPDX-License-Identifier: MIT
// Training progress in the local store (localprogress.hpp).
#include "backends/local/localprogress.hpp"

#include "src/errors.hpp"

namespace vstash::backends::local {

void LocalProgress::record_progress(const ProgressRecord& r) {
  m_db.write([&](Connection& conn) {
    if (r.run.empty()) {
      throw UsageError("progress: empty run name");
    }
    conn.prepare(
            "INSERT OR REPLACE INTO progress(run, rank, epoch, step, metrics, updated_at) "
            "VALUES(?1, ?2, ?3, ?4, ?5, ?6)")
        .bind(1, r.run)
        .bind(2, r.rank)
        .bind(3, r.epoch)
        .bind(4, r.step)
        .bind(5, metrics_to_json(r.metrics).dump())
        .bind(6, now_rfc3339())
        .run();
  });
}

std::vector<ProgressRecord> LocalProgress::list_progress(const std::string& run) {
  return m_db.read([&](Connection& conn) {
    auto s = conn.prepare(
        "SELECT run, rank, epoch, step, metrics, updated_at FROM progress WHERE ?1 = '' OR run = ?1 ORDER BY run, "
        "rank");
    s.bind(1, run);
    std::vector<ProgressRecord> out;
    while (s.step()) {
      ProgressRecord r;
      r.run = s.text_at(0);
      r.rank = s.int_at(1);
      r.epoch = s.int_at(2);
      r.step = s.int_at(3);
      r.metrics = metrics_from_json(json::parse(s.text_at(4)));
      r.updated_at = s.text_at(5);
      out.push_back(std::move(r));
    }
    return out;
  });
}

}  // namespace vstash::backends::local
