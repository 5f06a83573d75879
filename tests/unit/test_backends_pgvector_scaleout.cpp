// SPDX-License-Identifier: MIT
// pgvector beyond one server, without a server: the statements that create a rows table with
// and without Citus (backends/pgvector/pgcitus.hpp), and the read_replicas key
// (backends/pgvector/pgreplicas.hpp).
#ifdef VSTASH_HAVE_PGVECTOR
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "backends/pgvector/pgcitus.hpp"
#include "backends/pgvector/pgreplicas.hpp"
#include "src/errors.hpp"

using vstash::backends::pgvector::ConnectionSettings;
using vstash::backends::pgvector::parse_replicas;
using vstash::backends::pgvector::rows_table_statements_quoted;
using vstash::backends::pgvector::Statement;

namespace {

std::vector<std::string> sql_of(const std::vector<Statement>& statements) {
  std::vector<std::string> out;
  for (const auto& st : statements) {
    out.push_back(st.sql);
  }
  return out;
}

}  // namespace

TEST_SUITE("backends::pgvector::scaleout") {
  TEST_CASE("without citus the rows table is a plain table keyed by id, as before") {
    const auto st = rows_table_statements_quoted("\"v_d_1\"", 8, false);
    CHECK(sql_of(st) ==
          std::vector<std::string>{"CREATE TABLE \"v_d_1\" (id text PRIMARY KEY, idx bigint NOT NULL UNIQUE, embedding "
                                   "vector(8) NOT NULL, sample bytea, label bytea, metadata jsonb)",
                                   "ALTER TABLE \"v_d_1\" ALTER COLUMN embedding SET STORAGE PLAIN"});
    for (const auto& s : st) {
      CHECK(s.params.empty());
    }
  }

  TEST_CASE("with citus the table is keyed and distributed by idx, after its creation, in the same statements") {
    const auto st = rows_table_statements_quoted("\"v_d;x_2\"", 8, true);
    CHECK(sql_of(st) ==
          std::vector<std::string>{"CREATE TABLE \"v_d;x_2\" (id text NOT NULL, idx bigint PRIMARY KEY, embedding "
                                   "vector(8) NOT NULL, sample bytea, label bytea, metadata jsonb)",
                                   "ALTER TABLE \"v_d;x_2\" ALTER COLUMN embedding SET STORAGE PLAIN",
                                   "CREATE INDEX ON \"v_d;x_2\" (id)",
                                   "SELECT create_distributed_table($1::regclass, 'idx')"});
    // The table name travels as a bound parameter, never spliced into the call.
    REQUIRE(st.back().params.size() == 1);
    CHECK(st.back().params[0] == "\"v_d;x_2\"");
  }

  TEST_CASE("a wide vector keeps TOAST storage under citus too") {
    const auto st = sql_of(rows_table_statements_quoted("\"t\"", 1536, true));
    REQUIRE(st.size() == 3);
    CHECK(st[1] == "CREATE INDEX ON \"t\" (id)");
  }

  TEST_CASE("read_replicas lists host:port entries that inherit the primary's other settings") {
    ConnectionSettings primary;
    primary.host = std::string("db0");
    primary.port = 5432;
    primary.database = std::string("ml");
    primary.user = std::string("u");
    const auto r = parse_replicas("db1:5433, 10.0.0.2:6432", primary);
    REQUIRE(r.size() == 2);
    CHECK(r[0].host == "db1");
    CHECK(r[0].port == 5433);
    CHECK(r[1].host == "10.0.0.2");
    CHECK(r[1].port == 6432);
    CHECK(r[1].database == "ml");
    CHECK(r[1].user == "u");
    CHECK(parse_replicas("", primary).empty());
  }

  TEST_CASE("a malformed read_replicas entry is one line naming the key and the entry") {
    ConnectionSettings primary;
    for (const char* bad : {"db1", "db1:", ":5432", "db1:0", "db1:70000", "db1:54x", "db1:5432,", "a:1,,b:2"}) {
      CAPTURE(bad);
      try {
        parse_replicas(bad, primary);
        FAIL("accepted");
      } catch (const vstash::UsageError& e) {
        const std::string what = e.what();
        CHECK(what.find("read_replicas") != std::string::npos);
        CHECK(what.find('\n') == std::string::npos);
      }
    }
  }
}
#endif
