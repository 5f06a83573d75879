// SPDX-License-Identifier: MIT
// Citus detection and the rows table's creation statements (distributed by idx under citus).
#include "backends/pgvector/pgcitus.hpp"

#include <fmt/format.h>

#include "backends/pgvector/pgschema.hpp"

namespace vstash::backends::pgvector {

bool citus_installed(Session& s) {
  bool found = false;
  s.run("checking the citus extension",
        [&] { found = s.exec("SELECT 1 FROM pg_extension WHERE extname = 'citus'").rows() > 0; });
  return found;
}

std::vector<Statement> rows_table_statements_quoted(const std::string& quoted, int64_t dimension, bool citus) {
  std::vector<Statement> out;
  const std::string keys =
      citus ? "id text NOT NULL, idx bigint PRIMARY KEY" : "id text PRIMARY KEY, idx bigint NOT NULL UNIQUE";
  out.push_back({fmt::format("CREATE TABLE {} ({}, embedding vector({}) NOT NULL, sample bytea, label bytea, "
                             "metadata jsonb)",
                             quoted, keys, dimension),
                 {}});
  // pgvector's type stores vectors out of line (TOAST) once a row passes ~2 kB, i.e. from
  // about 500 dimensions: every row then costs a second heap tuple and a TOAST index entry,
  // and every exact scan a detoast. Up to k_inline_dimensions the vector (4 kB) is kept in
  // the row instead; the other columns stay TOAST-able, so a row always fits a page.
  if (dimension <= k_inline_dimensions) {
    out.push_back({fmt::format("ALTER TABLE {} ALTER COLUMN embedding SET STORAGE PLAIN", quoted), {}});
  }
  if (citus) {
    out.push_back({fmt::format("CREATE INDEX ON {} (id)", quoted), {}});
    // After the CREATE TABLE, in the same transaction: the shards are made on the workers.
    out.push_back({"SELECT create_distributed_table($1::regclass, 'idx')", {quoted}});
  }
  return out;
}

std::vector<Statement> rows_table_statements(Session& s, const std::string& table, int64_t dimension, bool citus) {
  return rows_table_statements_quoted(s.quote(table), dimension, citus);
}

}  // namespace vstash::backends::pgvector
