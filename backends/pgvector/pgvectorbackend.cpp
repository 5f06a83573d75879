// SPDX-License-Identifier: MIT
// The pgvector store: the profile's settings, the lazily created tables, `require` and stats; the rest of the
// class is in the files pgvectorstore.hpp lists.
#include "backends/pgvector/pgvectorstore.hpp"

#include <fmt/format.h>

#include "backends/pgvector/pgcitus.hpp"
#include "backends/pgvector/pgvectorbackend.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"

namespace vstash::backends::pgvector {

std::string vector_literal(const std::vector<float>& v) { return fmt::format("[{}]", fmt::join(v, ",")); }

std::string ids_json(const std::vector<std::string>& ids) { return json(ids).dump(); }

std::string_view index_kind_name(IndexKind k) {
  return k == IndexKind::hnsw ? "hnsw" : k == IndexKind::ivfflat ? "ivfflat" : "none";
}

PgvectorBackend::PgvectorBackend(const Profile& p)
    : m_session(
          [&] {
            ConnectionSettings s;
            s.host = p.get_string("host", "localhost");
            s.port = p.get_int("port", 5432);
            s.database = p.get_string("database", "postgres");
            s.user = p.get_string("user", "");
            s.password = p.get_string("password", "");
            s.sslmode = p.get_string("sslmode", "");
            s.tls_ca = p.get_string("tls_ca", "");
            s.tls_cert = p.get_string("tls_cert", "");
            s.tls_key = p.get_string("tls_key", "");
            s.connect_timeout_s = p.get_int("connect_timeout", 10);
            s.statement_timeout_ms = p.get_int("statement_timeout_ms", 0);
            return s;
          }(),
          p.secrets()),
      m_reads(m_session, parse_replicas(p.get_string("read_replicas", ""), m_session.settings()), p.secrets()) {
  const std::string prefix = p.get_string("table_name", "vstash");
  check_prefix(prefix);
  m_prefix = prefix;
  const std::string index = p.get_string("index", "hnsw");
  if (index == "hnsw") {
    m_index.kind = IndexKind::hnsw;
  } else if (index == "ivfflat") {
    m_index.kind = IndexKind::ivfflat;
  } else if (index == "none") {
    m_index.kind = IndexKind::none;
  } else {
    throw UsageError(
        fmt::format("profile \"{}\" ({}): index \"{}\" is not hnsw, ivfflat or none", p.name(), p.source(), index));
  }
  m_index.m = p.get_int("m", 16);
  m_index.ef_construction = p.get_int("ef_construction", 64);
  m_index.ef_search = p.get_int("ef_search", k_default_ef_search);
  m_index.lists = p.get_int("lists", 0);
  m_index.probes = p.get_int("probes", 0);
  const auto positive = [&](const char* key, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) {
      throw UsageError(fmt::format("profile \"{}\" ({}): {} must be between {} and {}, got {}", p.name(), p.source(),
                                   key, lo, hi, v));
    }
  };
  positive("port", m_session.settings().port, 1, 65535);
  positive("connect_timeout", m_session.settings().connect_timeout_s, 0, 86400);
  positive("statement_timeout_ms", m_session.settings().statement_timeout_ms, 0, INT32_MAX);
  positive("m", m_index.m, 2, 100);
  positive("ef_construction", m_index.ef_construction, 4, 1000);
  positive("ef_search", m_index.ef_search, 1, 1000);
  positive("lists", m_index.lists, 0, 32768);
  positive("probes", m_index.probes, 0, 32768);
}

Tables& PgvectorBackend::tables() {
  if (!m_ready) {
    m_session.conn();
    m_tables = table_names(m_session, m_prefix);
    ensure_schema(m_session, m_tables);
    m_tables.citus = citus_installed(m_session);
    m_ready = true;
  }
  return m_tables;
}

std::string PgvectorBackend::ctx(const std::string& dataset) const { return fmt::format("dataset \"{}\"", dataset); }

CatalogEntry PgvectorBackend::require(const std::string& dataset, bool for_update) {
  PgDatasetRecords records(m_session, tables(), for_update);
  return entry_of(catalog::Catalog(records).require(dataset));
}

CatalogEntry PgvectorBackend::require_on(Session& s, const std::string& dataset) {
  const Tables& t = tables();
  PgDatasetRecords records(s, t);
  return entry_of(catalog::Catalog(records).require(dataset));
}

Stats PgvectorBackend::stats() {
  Stats out;
  out.backend = "pgvector";
  out.location = m_session.location();
  const Tables& t = tables();
  m_session.transact("reading statistics", [&](pqxx::work&) {
    for (const auto& record : PgDatasetRecords(m_session, t).list()) {
      out.datasets.push_back(info_of(entry_of(record)));
      out.store_bytes += out.datasets.back().bytes;
    }
    const Result per_model =
        m_session.exec(fmt::format("SELECT model, count(*) FROM {} GROUP BY model ORDER BY model", t.checkpoints));
    for (int i = 0; i < per_model.rows(); ++i) {
      out.checkpoints_per_model[per_model.text(i, 0)] = per_model.int_text(i, 1);
    }
    for (const auto* table : {&t.meta, &t.datasets, &t.checkpoints, &t.arrays, &t.latest, &t.progress}) {
      out.store_bytes +=
          m_session.exec("SELECT COALESCE(pg_total_relation_size(to_regclass($1)), 0)", {Param(*table)}).int_text(0, 0);
    }
    const Result v = m_session.exec(
        "SELECT current_setting('server_version'), (SELECT extversion FROM pg_extension WHERE extname = 'vector')");
    out.extra["server_version"] = v.text(0, 0);
    out.extra["extension_version"] = v.text(0, 1);
    out.extra["table_prefix"] = m_prefix;
    out.extra["index"] = index_stats();
  });
  return out;
}

json PgvectorBackend::index_stats() const {
  json index{{"type", std::string(index_kind_name(m_index.kind))}};
  if (m_index.kind == IndexKind::hnsw) {
    index["m"] = m_index.m;
    index["ef_construction"] = m_index.ef_construction;
    index["ef_search"] = m_index.ef_search;
  } else if (m_index.kind == IndexKind::ivfflat) {
    index["lists"] = m_index.lists > 0 ? json(m_index.lists) : json("rows/1000");
    index["probes"] = m_index.probes > 0 ? json(m_index.probes) : json("sqrt(lists)");
  }
  index["min_rows"] = k_index_min_rows;
  if (m_index.kind != IndexKind::none) {
    index["note"] = "approximate: raise ef_search (probes) for recall, or query --exact";
  }
  return index;
}

std::unique_ptr<Backend> create(const Profile& profile) { return std::make_unique<PgvectorBackend>(profile); }

}  // namespace vstash::backends::pgvector
