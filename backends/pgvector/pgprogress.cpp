// SPDX-License-Identifier: MIT
#include "backends/pgvector/pgprogress.hpp"

#include <fmt/format.h>

#include <utility>

namespace vstash::backends::pgvector {

PgProgress::PgProgress(Session& session, TablesFn tables) : m_session(session), m_tables(std::move(tables)) {}

void PgProgress::record_progress(const ProgressRecord& r) {
  Session& s = m_session;
  const Tables& t = m_tables();
  s.transact(fmt::format("recording progress of run \"{}\"", r.run), [&](pqxx::work&) {
    s.exec(fmt::format(
               "INSERT INTO {} (run, rank, epoch, step, metrics, updated_at) VALUES ($1, $2::bigint, "
               "$3::bigint, $4::bigint, $5::jsonb, $6) ON CONFLICT (run, rank) DO UPDATE SET epoch = "
               "excluded.epoch, step = excluded.step, metrics = excluded.metrics, updated_at = excluded.updated_at",
               t.progress),
           {Param(r.run), Param(r.rank), Param(r.epoch), Param(r.step), Param(metrics_to_json(r.metrics).dump()),
            Param(now_rfc3339())});
  });
}

std::vector<ProgressRecord> PgProgress::list_progress(const std::string& run) {
  Session& s = m_session;
  const Tables& t = m_tables();
  std::vector<ProgressRecord> out;
  s.transact("listing progress", [&](pqxx::work&) {
    const Result r =
        s.exec(fmt::format("SELECT run, rank, epoch, step, metrics::text, updated_at FROM {} WHERE $1 = '' "
                           "OR run = $1 ORDER BY run, rank",
                           t.progress),
               {Param(run)});
    for (int i = 0; i < r.rows(); ++i) {
      ProgressRecord p;
      p.run = r.text(i, 0);
      p.rank = r.int_text(i, 1);
      p.epoch = r.int_text(i, 2);
      p.step = r.int_text(i, 3);
      p.metrics = metrics_from_json(nlohmann::json::parse(r.get(i, 4)));
      p.updated_at = r.text(i, 5);
      out.push_back(std::move(p));
    }
  });
  return out;
}

}  // namespace vstash::backends::pgvector
