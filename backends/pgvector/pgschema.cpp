// SPDX-License-Identifier: MIT
// Table names, schema creation and versioning.
#include "backends/pgvector/pgschema.hpp"

#include <fmt/format.h>

#include "src/errors.hpp"

namespace vstash::backends::pgvector {

namespace {

constexpr size_t k_max_identifier = 63;  // PostgreSQL's NAMEDATALEN - 1
constexpr size_t k_longest_suffix = 18;  // "_checkpoint_arrays"
constexpr size_t k_hash_chars = 8;
constexpr size_t k_index_suffix = 4;  // "_ann"

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

void check_prefix(const std::string& prefix) {
  if (prefix.empty() || prefix.size() + k_longest_suffix > k_max_identifier - 2 * k_hash_chars) {
    throw UsageError(fmt::format("pgvector: table_name \"{}\" must be 1 to {} bytes", prefix,
                                 k_max_identifier - 2 * k_hash_chars - k_longest_suffix));
  }
}

Tables table_names(Session& s, const std::string& prefix) {
  Tables t;
  t.prefix = prefix;
  t.meta = s.quote(prefix + "_meta");
  t.datasets = s.quote(prefix + "_datasets");
  t.checkpoints = s.quote(prefix + "_checkpoints");
  t.arrays = s.quote(prefix + "_checkpoint_arrays");
  t.latest = s.quote(prefix + "_latest");
  t.progress = s.quote(prefix + "_progress");
  return t;
}

std::string rows_table_name(const std::string& prefix, const std::string& dataset) {
  const size_t budget = k_max_identifier - prefix.size() - 2 - k_hash_chars - k_index_suffix;
  std::string base;
  for (unsigned char c : dataset) {
    if (base.size() >= budget) {
      break;
    }
    base += std::isalnum(c) ? static_cast<char>(std::tolower(c)) : '_';
  }
  return fmt::format("{}_{}_{:08x}", prefix, base, fnv1a(dataset) & 0xffffffffu);
}

std::string ann_index_name(const std::string& rows_table) { return rows_table + "_ann"; }

void ensure_schema(Session& s, const Tables& t) {
  const auto& db = s.settings().database;
  bool have_extension = false;
  s.run("checking the vector extension",
        [&] { have_extension = s.exec("SELECT 1 FROM pg_extension WHERE extname = 'vector'").rows() > 0; });
  if (!have_extension) {
    try {
      s.exec("CREATE EXTENSION IF NOT EXISTS vector");
    } catch (const ServerError& e) {
      if (e.sqlstate().empty() || e.sqlstate().substr(0, 2) == "08") {
        s.run("creating the vector extension", [] { throw; });
      }
      // Another process created it at the same moment: that is success.
      const bool raced = e.sqlstate() == "23505" || e.sqlstate() == "42710";
      if (!raced) {
        throw Error(
            fmt::format("{}: the vector extension is not installed in database \"{}\" and this user cannot "
                        "create it ({}); a superuser must run, in database \"{}\": CREATE EXTENSION vector;",
                        s.location(), db, s.scrub(e.what()), db));
      }
    }
  }
  s.transact("creating the vstash tables", [&](pqxx::work&) {
    // One creator at a time per prefix; the others wait and then see the tables.
    s.exec("SELECT pg_advisory_xact_lock(hashtext($1))", {Param("vstash:" + t.prefix)});
    s.exec(fmt::format("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value text NOT NULL)", t.meta));
    const Result v = s.exec(fmt::format("SELECT value FROM {} WHERE key = 'layout_version'", t.meta));
    if (v.rows() > 0) {
      const int64_t found = v.int_text(0, 0);
      if (found > k_layout_version) {
        throw Error(
            fmt::format("{}: tables \"{}_*\" use layout version {}, newer than this vstash understands "
                        "({}); upgrade vstash",
                        s.location(), t.prefix, found, k_layout_version));
      }
      return;
    }
    s.exec(fmt::format(
        "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, tbl text NOT NULL UNIQUE, dtype text NOT NULL, "
        "row_shape jsonb NOT NULL, dim integer NOT NULL, label_dtype text, label_shape jsonb NOT NULL, "
        "metric text NOT NULL, metadata jsonb NOT NULL DEFAULT '{{}}', live_rows bigint NOT NULL DEFAULT 0, "
        "next_index bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now())",
        t.datasets));
    s.exec(fmt::format(
        "CREATE TABLE IF NOT EXISTS {} (model text NOT NULL, epoch bigint NOT NULL, metrics jsonb NOT NULL, "
        "metadata jsonb NOT NULL, created_at text NOT NULL, bytes bigint NOT NULL, PRIMARY KEY (model, epoch))",
        t.checkpoints));
    s.exec(
        fmt::format("CREATE TABLE IF NOT EXISTS {} (model text NOT NULL, epoch bigint NOT NULL, name text NOT NULL, "
                    "dtype text NOT NULL, shape jsonb NOT NULL, data bytea NOT NULL, PRIMARY KEY (model, epoch, name), "
                    "FOREIGN KEY (model, epoch) REFERENCES {} (model, epoch) ON DELETE CASCADE)",
                    t.arrays, t.checkpoints));
    s.exec(fmt::format("CREATE TABLE IF NOT EXISTS {} (model text PRIMARY KEY, epoch bigint NOT NULL)", t.latest));
    s.exec(
        fmt::format("CREATE TABLE IF NOT EXISTS {} (run text NOT NULL, rank bigint NOT NULL, epoch bigint NOT NULL, "
                    "step bigint NOT NULL, metrics jsonb NOT NULL, updated_at text NOT NULL, PRIMARY KEY (run, rank))",
                    t.progress));
    s.exec(fmt::format("INSERT INTO {} (key, value) VALUES ('layout_version', $1)", t.meta),
           {Param(int64_t{k_layout_version})});
  });
}

}  // namespace vstash::backends::pgvector
