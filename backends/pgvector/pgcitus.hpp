// SPDX-License-Identifier: MIT
// Citus (PostgreSQL spread over worker nodes): whether the database has the citus extension,
// and the statements that create a dataset's rows table, distributed by its index column when
// it does. COPY and every other statement go to the profile's host, the coordinator, which
// routes them to the shards. The shared tables (catalog, checkpoints, progress) stay local
// tables on the coordinator, so the catalog's compare-and-set on xmin (pgdatasets.cpp) is
// unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/pgvector/pgconnection.hpp"

namespace vstash::backends::pgvector {

// True when the citus extension is installed in the session's database.
bool citus_installed(Session& s);

// One statement of a rows table's creation: SQL with $n parameters bound as text.
struct Statement {
  std::string sql;
  std::vector<std::string> params;
};

// The statements that create rows table `table` (unquoted) of `dimension` dimensions, in order,
// for one transaction. With citus, a distributed table's unique keys must hold the
// distribution column, so the primary key is idx (the distribution column) and id has a plain
// index for lookups; the table is then distributed by idx (create_distributed_table). The
// database no longer enforces unique ids there, and the upsert path's ON CONFLICT (id)
// (pgupsert.cpp) has no unique index to match: docs/backends.md says what that leaves out.
std::vector<Statement> rows_table_statements(Session& s, const std::string& table, int64_t dimension, bool citus);
// The same statements from an already quoted table name (no session needed: the unit test).
std::vector<Statement> rows_table_statements_quoted(const std::string& quoted, int64_t dimension, bool citus);

}  // namespace vstash::backends::pgvector
