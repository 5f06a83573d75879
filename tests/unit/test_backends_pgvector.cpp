// SPDX-License-Identifier: MIT
// pgvector-specific behaviour against a real server (issue 3): schema versioning, the missing
// extension, quoted identifiers, hostile input through bound parameters, the ANN index built
// after a load, stats, and the connection / timeout errors. Skipped by the plain `unit` run;
// tests/suites/pgvector.cmake runs it with --no-skip and the profile of the contract suite
// ($VSTASH_CONTRACT_CONFIG, $VSTASH_CONTRACT_PROFILE). A missing server fails every case.
#ifdef VSTASH_HAVE_PGVECTOR
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <type_traits>

#include "backends/pgvector/pgcitus.hpp"
#include "backends/pgvector/pgconnection.hpp"
#include "backends/pgvector/pgdatasets.hpp"
#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/testutil.hpp"
#include "tests/unit/pgvector_testutil.hpp"

using namespace vstash;
using namespace vstash::backends;
using json = nlohmann::json;

namespace {

using pgtest::pg_profile;
using pgtest::session_of;

// A profile on its own table prefix, so cases running at once never share tables.
Profile fresh_profile(const std::string& prefix = "pgt") {
  Profile p = pg_profile();
  p.set("table_name", testutil::unique_name(prefix));
  return p;
}

std::string location(const Profile& p) {
  return fmt::format("{}:{}/{}", p.get_string("host"), p.get_int("port"), p.get_string("database"));
}

// The message of the vstash error fn throws, checked to be one line without the password.
template <class E>
std::string error_of(const Profile& p, const std::function<void()>& fn) {
  std::string message = "no error";
  try {
    fn();
  } catch (const Error& e) {
    bool expected = true;
    if constexpr (!std::is_same_v<E, Error>) {
      expected = dynamic_cast<const E*>(&e) != nullptr;
    }
    message = expected ? std::string(e.what())
                       : fmt::format("wrong error class (exit {}): {}", static_cast<int>(e.code()), e.what());
  }
  CHECK(message.find('\n') == std::string::npos);
  const std::string password = p.get_string("password", "");
  if (!password.empty()) {
    CHECK(message.find(password) == std::string::npos);
  }
  return message;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

DatasetSpec spec_of(const std::string& name, int64_t dim, Metric metric = Metric::cosine) {
  DatasetSpec s;
  s.name = name;
  s.row_shape = {dim};
  s.metric = metric;
  return s;
}

RowBatch batch_of(std::vector<std::string> ids, Array data, std::vector<json> metadata = {}) {
  RowBatch b;
  b.ids = std::move(ids);
  b.data = std::move(data);
  b.metadata = std::move(metadata);
  return b;
}

std::vector<std::string> numbered(const std::string& prefix, int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(prefix + std::to_string(i));
  }
  return out;
}

std::vector<float> row_vector(const Array& a, int64_t r) { return a.row_as_float32(r); }

// Exact top-k ids by L2 distance, ties by position.
std::vector<std::string> exact_l2(const Array& data, const std::vector<std::string>& ids, const std::vector<float>& q,
                                  size_t k) {
  std::vector<std::pair<double, size_t>> d;
  const auto dim = static_cast<size_t>(data.shape()[1]);
  for (size_t i = 0; i < ids.size(); ++i) {
    const float* v = data.as<float>() + i * dim;
    double s = 0;
    for (size_t j = 0; j < dim; ++j) {
      s += (v[j] - q[j]) * (v[j] - q[j]);
    }
    d.emplace_back(s, i);
  }
  std::sort(d.begin(), d.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < k && i < d.size(); ++i) {
    out.push_back(ids[d[i].second]);
  }
  return out;
}

}  // namespace

TEST_SUITE("backends::pgvector" * doctest::skip()) {
  TEST_CASE("a store written by a newer layout version is refused with a clear error") {
    const Profile p = fresh_profile();
    create_backend(p)->list_datasets();  // creates the tables at the current layout
    auto admin = session_of(p);
    admin.exec(fmt::format("UPDATE {} SET value = '99' WHERE key = 'layout_version'",
                           admin.quote(p.get_string("table_name") + "_meta")));
    const std::string msg = error_of<Error>(p, [&] { create_backend(p)->list_datasets(); });
    CHECK(contains(msg, location(p)));
    CHECK(contains(msg, "layout version 99"));
    CHECK(contains(msg, "upgrade vstash"));
  }

  TEST_CASE("a database without the vector extension names the exact SQL to run") {
    Profile p = fresh_profile();
    p.set("database", "vstash_noext");
    const std::string msg = error_of<Error>(p, [&] { create_backend(p)->create_dataset(spec_of("x", 4)); });
    CHECK(contains(msg, location(p)));
    CHECK(contains(msg, "CREATE EXTENSION vector;"));
    CHECK(contains(msg, "\"vstash_noext\""));
  }

  TEST_CASE("connection refused is retryable and names host:port and database") {
    Profile p = fresh_profile();
    p.set("port", 1);  // nothing listens on port 1 of the loopback
    const std::string msg = error_of<RetryableError>(p, [&] { create_backend(p)->list_datasets(); });
    CHECK(contains(msg, location(p)));
    CHECK(contains(msg, "connection refused"));
  }

  TEST_CASE("a wrong password is a usage error that never shows either password") {
    Profile p = fresh_profile();
    const std::string wrong = "Wr0ng-pw-'quoted\\";
    p.set("password", wrong);
    const std::string msg = error_of<UsageError>(p, [&] { create_backend(p)->list_datasets(); });
    CHECK(contains(msg, location(p)));
    CHECK(contains(msg, "password authentication failed"));
    CHECK_FALSE(contains(msg, wrong));
    CHECK_FALSE(contains(msg, pg_profile().get_string("password")));
  }

  TEST_CASE("a missing database is a usage error naming it") {
    Profile p = fresh_profile();
    p.set("database", "vstash_no_such_db");
    const std::string msg = error_of<UsageError>(p, [&] { create_backend(p)->list_datasets(); });
    CHECK(contains(msg, location(p)));
    CHECK(contains(msg, "vstash_no_such_db"));
  }

  TEST_CASE("a statement timeout is retryable and names the limit") {
    Profile p = fresh_profile();
    p.set("statement_timeout_ms", 300);
    auto b = create_backend(p);
    b->create_dataset(spec_of("t", 4));
    // Another session holds an exclusive lock on the catalog, so the read must wait.
    auto blocker = session_of(p);
    blocker.exec("BEGIN");
    blocker.exec(
        fmt::format("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", blocker.quote(p.get_string("table_name") + "_datasets")));
    const std::string msg = error_of<RetryableError>(p, [&] { b->dataset_info("t"); });
    blocker.exec("ROLLBACK");
    CHECK(contains(msg, location(p)));
    CHECK(contains(msg, "statement timeout (300 ms)"));
    // The session is usable again once the lock is gone.
    CHECK(b->dataset_info("t").has_value());
  }

  TEST_CASE("hostile table prefixes and dataset names are quoted identifiers that harm nothing") {
    const std::string prefix = "q'\"; $$x" + testutil::unique_name("");
    Profile p = pg_profile();
    p.set("table_name", prefix);
    auto b = create_backend(p);
    const std::string name = "ds'; DROP TABLE vstash_datasets; -- \"$$\"";
    b->create_dataset(spec_of(name, 3));
    const Array data = testutil::random_f32(3, 3, 1);
    b->write_rows(name, batch_of({"a", "b", "c"}, data));
    CHECK(b->read_rows(name, 0, 10).data == data);
    REQUIRE(b->list_datasets().size() == 1);
    CHECK(b->list_datasets()[0].spec.name == name);
    auto admin = session_of(p);
    // The tables carry the prefix verbatim.
    CHECK(admin.exec("SELECT 1 FROM pg_class WHERE relname = $1", {prefix + "_datasets"}).rows() == 1);
    CHECK(admin.exec("SELECT 1 FROM pg_class WHERE relname = $1", {prefix + "_meta"}).rows() == 1);
    CHECK(b->drop_dataset(name));
    CHECK(b->list_datasets().empty());
  }

  TEST_CASE("hostile ids, metadata keys and values travel as bound parameters and come back verbatim") {
    const Profile p = fresh_profile();
    auto b = create_backend(p);
    b->create_dataset(spec_of("h", 4));
    const std::vector<std::string> ids = {"'; DROP TABLE pgt; --", "a\\b", "q\"q", "$$x$$", "日本'語", "%_", "\\x00"};
    std::vector<json> md;
    for (size_t i = 0; i < ids.size(); ++i) {
      md.push_back({{"k'; DROP TABLE x; --", "v'); DELETE FROM t; --"},
                    {"back\\slash", "c:\\dir\\"},
                    {"$$", "$1"},
                    {"d$$", "$$ LANGUAGE sql $$"},
                    {"ü", "ß"},
                    {"n", static_cast<int64_t>(i)}});
    }
    const Array data = testutil::random_f32(static_cast<int64_t>(ids.size()), 4, 2);
    b->write_rows("h", batch_of(ids, data, md));
    const auto got = b->fetch("h", ids);
    CHECK(got.ids == ids);
    CHECK(got.metadata == md);
    const auto f =
        Filter::from_json({{"k'; DROP TABLE x; --", "v'); DELETE FROM t; --"}, {"d$$", "$$ LANGUAGE sql $$"}});
    CHECK(b->count("h", &f) == static_cast<int64_t>(ids.size()));
    const auto g = Filter::from_json({{"back\\slash", "c:\\dir\\"}, {"n", {{"$gte", 5}}}});
    CHECK(b->count("h", &g) == 2);
    CHECK(b->delete_ids("h", {ids[0]}) == 1);
    CHECK(b->count("h", nullptr) == static_cast<int64_t>(ids.size()) - 1);
    // A re-sent batch (the upsert path through the staging table) is just as safe.
    b->write_rows("h", batch_of(ids, data, md));
    CHECK(b->read_rows("h", 0, 100).ids.size() == ids.size());
    CHECK(b->list_datasets().size() == 1);
  }

  TEST_CASE("a NUL byte in an id, a metadata value or a filter is refused clearly") {
    const Profile p = fresh_profile();
    auto b = create_backend(p);
    b->create_dataset(spec_of("z", 2));
    const std::string nul_id = std::string("a\0b", 3);
    std::string msg =
        error_of<UsageError>(p, [&] { b->write_rows("z", batch_of({nul_id}, testutil::random_f32(1, 2, 3))); });
    CHECK(contains(msg, "NUL"));
    msg = error_of<UsageError>(p, [&] {
      b->write_rows("z", batch_of({"ok"}, testutil::random_f32(1, 2, 3), {json{{"k", std::string("x\0y", 3)}}}));
    });
    CHECK_MESSAGE(contains(msg, "NUL"), msg);
    CHECK(b->count("z", nullptr) == 0);
    const auto f = Filter::from_json({{"k", std::string("x\0y", 3)}});
    msg = error_of<UsageError>(p, [&] { b->count("z", &f); });
    CHECK(contains(msg, "NUL"));
    // The session still works afterwards.
    b->write_rows("z", batch_of({"ok"}, testutil::random_f32(1, 2, 3)));
    CHECK(b->count("z", nullptr) == 1);
  }

  TEST_CASE("dataset records compare-and-set on the row's version: a stale record loses, the catalog merges") {
    const Profile p = fresh_profile();
    auto b = create_backend(p);
    DatasetSpec spec = spec_of("c", 4);
    spec.metadata = {{"a", 1}};
    b->create_dataset(spec);
    auto s = session_of(p);
    const pgvector::Tables t = pgvector::table_names(s, p.get_string("table_name"));
    s.transact("test", [&](pqxx::work&) {
      pgvector::PgDatasetRecords records(s, t);
      const auto seen = records.get("c");
      REQUIRE(seen.has_value());
      CHECK(pgvector::entry_of(*seen).table == pgvector::rows_table_name(p.get_string("table_name"), "c"));
      CHECK_FALSE(records.insert(*seen));  // the name is taken
      auto next = *seen;
      next.next_index = 7;
      CHECK(records.compare_and_set(*seen, next));
      next.next_index = 9;
      CHECK_FALSE(records.compare_and_set(*seen, next));  // the row changed since `seen`
      CHECK(records.get("c")->next_index == 7);
    });
    spec.metadata = {{"b", 2}};
    b->create_dataset(spec);  // through the catalog: merges into the stored metadata
    CHECK(b->dataset_info("c")->spec.metadata == json{{"a", 1}, {"b", 2}});
    CHECK(b->dataset_info("c")->next_index == 7);
    s.transact("test", [&](pqxx::work&) {
      pgvector::PgDatasetRecords records(s, t);
      CHECK(records.remove("c"));
      CHECK_FALSE(records.remove("c"));
    });
    CHECK_FALSE(b->dataset_info("c").has_value());
  }

  TEST_CASE("upserting through the staging path keeps indices, counts and leaves no gap") {
    const Profile p = fresh_profile();
    auto b = create_backend(p);
    b->create_dataset(spec_of("u", 4));
    const Array first = testutil::random_f32(100, 4, 4);
    b->write_rows("u", batch_of(numbered("r", 100), first));
    // Half old ids, half new: old keep their index, new follow next_index in batch order.
    std::vector<std::string> ids = numbered("r", 100);
    ids.erase(ids.begin(), ids.begin() + 50);
    for (const auto& id : numbered("s", 50)) {
      ids.push_back(id);
    }
    b->write_rows("u", batch_of(ids, testutil::random_f32(100, 4, 5)));
    const auto info = b->dataset_info("u");
    REQUIRE(info.has_value());
    CHECK(info->rows == 150);
    CHECK(info->next_index == 150);
    const auto all = b->read_rows("u", 0, 1000);
    REQUIRE(all.size() == 150);
    for (int64_t i = 0; i < 150; ++i) {
      CHECK(all.indices[static_cast<size_t>(i)] == i);
    }
    CHECK(all.ids[149] == "s49");
  }

  TEST_CASE("the hnsw index is built after the load with the profile's parameters and kept on append") {
    Profile p = fresh_profile();
    p.set("index", "hnsw");
    p.set("m", 8);
    p.set("ef_construction", 40);
    p.set("ef_search", 64);
    auto b = create_backend(p);
    b->create_dataset(spec_of("ann", 16, Metric::euclidean));
    const int64_t n = 2000;
    const Array data = testutil::random_f32(n, 16, 6);
    const auto ids = numbered("v", n);
    b->write_rows("ann", batch_of(ids, data));
    // Loading never builds the index: pgvector's advice is to index after the load.
    auto info = b->dataset_info("ann");
    REQUIRE(info.has_value());
    CHECK(info->extra.value("index_built", true) == false);
    const auto q = row_vector(data, 7);
    const auto hits = b->query("ann", q, {.top_k = 10});
    REQUIRE(hits.size() == 10);
    CHECK(hits[0].id == "v7");
    CHECK(hits[0].score == doctest::Approx(0.0).epsilon(1e-6));
    info = b->dataset_info("ann");
    CHECK(info->extra.value("index_built", false) == true);
    CHECK(info->extra.value("index", "") == "hnsw");
    const std::string params = info->extra.value("index_parameters", "");
    CHECK(contains(params, "m=8"));
    CHECK(contains(params, "ef_construction=40"));
    // Recall against exact search on a few queries.
    size_t found = 0;
    for (int64_t r = 0; r < 20; ++r) {
      const auto qv = row_vector(testutil::random_f32(1, 16, static_cast<uint32_t>(100 + r)), 0);
      const auto exact = exact_l2(data, ids, qv, 10);
      for (const auto& h : b->query("ann", qv, {.top_k = 10})) {
        found += static_cast<size_t>(std::count(exact.begin(), exact.end(), h.id));
      }
    }
    CHECK(static_cast<double>(found) / 200.0 >= 0.9);
    // Appending keeps the index, and the new row is found through it.
    const Array extra = testutil::random_f32(1, 16, 7);
    b->write_rows("ann", batch_of({"appended"}, extra));
    CHECK(b->query("ann", row_vector(extra, 0), {.top_k = 1})[0].id == "appended");
    CHECK(b->dataset_info("ann")->extra.value("index_built", false) == true);
    CHECK(b->finish_ingest("ann").empty());  // nothing to build: the index is kept
  }

  TEST_CASE("the end of an ingest builds the index, once, and only with enough rows") {
    Profile p = fresh_profile();
    p.set("index", "hnsw");
    auto b = create_backend(p);
    b->create_dataset(spec_of("small", 8, Metric::cosine));
    b->write_rows("small", batch_of(numbered("s", 10), testutil::random_f32(10, 8, 3)));
    CHECK(b->finish_ingest("small").empty());
    CHECK(b->dataset_info("small")->extra.value("index_built", true) == false);

    b->create_dataset(spec_of("big", 8, Metric::cosine));
    b->write_rows("big", batch_of(numbered("b", 1500), testutil::random_f32(1500, 8, 4)));
    const std::string note = b->finish_ingest("big");
    CHECK(contains(note, "built the hnsw index"));
    CHECK(contains(note, "1500 rows"));
    // Another connection (the next command) sees it and builds nothing.
    CHECK(create_backend(p)->dataset_info("big")->extra.value("index_built", false) == true);
    CHECK(create_backend(p)->finish_ingest("big").empty());
  }

  TEST_CASE("an index build reports its progress, sane at every step and ending with \"done\"") {
    Profile p = fresh_profile();
    p.set("index", "hnsw");
    auto b = create_backend(p);
    b->create_dataset(spec_of("watched", 32, Metric::euclidean));
    const int64_t n = 20000;
    b->write_rows("watched", batch_of(numbered("w", n), testutil::random_f32(n, 32, 9)));
    std::vector<backends::IndexProgress> seen;  // the watcher's thread, then this one: never at once
    const std::string note =
        b->finish_ingest("watched", [&](const backends::IndexProgress& step) { seen.push_back(step); });
    CHECK(contains(note, "built the hnsw index"));
    REQUIRE(!seen.empty());
    CHECK(seen.back().phase == "done");
    for (const auto& step : seen) {
      CAPTURE(step.phase);
      CHECK(!step.phase.empty());
      CHECK(step.done >= 0);
      CHECK((step.total == 0 || step.done <= step.total));
    }
    // A build not asked to report says nothing and still builds.
    b->create_dataset(spec_of("quiet", 8, Metric::cosine));
    b->write_rows("quiet", batch_of(numbered("q", 1500), testutil::random_f32(1500, 8, 4)));
    CHECK(contains(b->finish_ingest("quiet"), "built the hnsw index"));
  }

  TEST_CASE("the ivfflat index takes lists from the profile and probes at query time") {
    Profile p = fresh_profile();
    p.set("index", "ivfflat");
    p.set("lists", 7);
    p.set("probes", 7);
    auto b = create_backend(p);
    b->create_dataset(spec_of("ivf", 8, Metric::dot));
    const Array data = testutil::random_f32(1200, 8, 8);
    b->write_rows("ivf", batch_of(numbered("w", 1200), data));
    const auto hits = b->query("ivf", row_vector(data, 3), {.top_k = 5});
    REQUIRE(hits.size() == 5);
    const auto info = b->dataset_info("ivf");
    CHECK(info->extra.value("index", "") == "ivfflat");
    CHECK(contains(info->extra.value("index_parameters", ""), "lists=7"));
    // probes = lists searches every list: the result is the exact top 5 by inner product.
    std::vector<std::pair<double, std::string>> exact;
    const auto q = row_vector(data, 3);
    for (int64_t i = 0; i < 1200; ++i) {
      const auto v = row_vector(data, i);
      double s = 0;
      for (size_t j = 0; j < 8; ++j) {
        s += static_cast<double>(v[j]) * q[j];
      }
      exact.emplace_back(-s, "w" + std::to_string(i));
    }
    std::sort(exact.begin(), exact.end());
    for (size_t i = 0; i < 5; ++i) {
      CHECK(hits[i].id == exact[i].second);
      CHECK(hits[i].score == doctest::Approx(-exact[i].first).epsilon(1e-5));
    }
  }

  TEST_CASE("stats report rows, dimensions, sizes, index settings and server and extension versions") {
    Profile p = fresh_profile();
    p.set("index", "hnsw");
    p.set("m", 12);
    auto b = create_backend(p);
    b->create_dataset(spec_of("st", 5));
    b->write_rows("st", batch_of(numbered("x", 10), testutil::random_f32(10, 5, 9)));
    const Stats s = b->stats();
    CHECK(s.backend == "pgvector");
    CHECK(s.location == location(p));
    REQUIRE(s.datasets.size() == 1);
    CHECK(s.datasets[0].rows == 10);
    CHECK(s.datasets[0].spec.dimension() == 5);
    CHECK(s.datasets[0].bytes > 0);
    CHECK(s.store_bytes >= s.datasets[0].bytes);
    CHECK(contains(s.extra.value("server_version", ""), "15."));
    CHECK(s.extra.value("extension_version", "") == "0.8.0");
    REQUIRE(s.extra.contains("index"));
    CHECK(s.extra["index"].value("type", "") == "hnsw");
    CHECK(s.extra["index"].value("m", 0) == 12);
    CHECK(s.extra["index"].value("ef_construction", 0) == 64);
    CHECK(s.extra.dump().find(p.get_string("password")) == std::string::npos);
  }

  TEST_CASE("a bad index setting in the profile is a usage error") {
    Profile p = fresh_profile();
    p.set("index", "annoy");
    CHECK_THROWS_AS(create_backend(p), UsageError);
    p.set("index", "hnsw");
    p.set("m", 1);
    CHECK_THROWS_AS(create_backend(p), UsageError);
  }

  // Citus is not packaged here: its create_distributed_table is a stub that records its
  // arguments, so the statements are checked as PostgreSQL runs them (docs/backends.md).
  TEST_CASE("the citus rows-table statements run in one transaction and distribute by idx") {
    const Profile p = fresh_profile();
    auto s = session_of(p);
    const std::string schema = s.quote(testutil::unique_name("citus"));
    const std::string table = schema + "." + s.quote("rows;\"x");
    s.exec("CREATE SCHEMA " + schema);
    s.exec(fmt::format("CREATE TABLE {}.calls (tbl oid, col text)", schema));
    s.exec(
        fmt::format("CREATE FUNCTION {0}.create_distributed_table(t regclass, col text) RETURNS void LANGUAGE sql AS "
                    "$$ INSERT INTO {0}.calls VALUES (t::oid, col) $$",
                    schema));
    s.transact("citus statements", [&](pqxx::work&) {
      s.exec(fmt::format("SET LOCAL search_path = {}, public", schema));
      for (const auto& st : pgvector::rows_table_statements_quoted(table, 8, true)) {
        s.exec(st.sql, std::vector<pgvector::Param>(st.params.begin(), st.params.end()));
      }
    });
    const auto calls = s.exec(fmt::format("SELECT tbl = to_regclass($1)::oid, col FROM {}.calls", schema), {table});
    REQUIRE(calls.rows() == 1);
    CHECK(calls.text(0, 0) == "t");  // the bound name is the table just created
    CHECK(calls.text(0, 1) == "idx");
    const auto key = s.exec(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = to_regclass($1) AND i.indisprimary",
        {table});
    REQUIRE(key.rows() == 1);
    CHECK(key.text(0, 0) == "idx");
    s.exec(fmt::format("DROP SCHEMA {} CASCADE", schema));
  }
}
#endif  // VSTASH_HAVE_PGVECTOR
