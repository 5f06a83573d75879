// SPDX-License-Identifier: MIT
// pgvector's streamed batches against a real server (backends/pgvector/pgsamples.hpp): one
// round trip per batch to a prepared statement, the same data and labels as read_positions,
// and the transactional path whenever the catalog no longer vouches for the rows. Skipped by
// the plain `unit` run; tests/suites/pgvector.cmake runs suite backends::pgvector with
// --no-skip and the contract suite's profile. The vector decoder's cases need no server.
#ifdef VSTASH_HAVE_PGVECTOR
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "backends/pgvector/pgdatasets.hpp"
#include "backends/pgvector/pgsamples.hpp"
#include "backends/pgvector/pgschema.hpp"
#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/testutil.hpp"
#include "tests/unit/pgvector_testutil.hpp"

using namespace vstash;
using namespace vstash::backends;

namespace {

// The contract suite's profile on a table prefix of its own.
Profile reads_profile() {
  Profile p = pgtest::pg_profile();
  p.set("table_name", testutil::unique_name("pgr"));
  return p;
}

// n rows of dim values (row i's values i + j / 8, exact in float32) with labels 1000 + i.
RowBatch labelled_rows(int64_t n, int64_t dim, DType dtype = DType::f32) {
  RowBatch b;
  b.data = Array(dtype, {n, dim});
  b.labels = Array(DType::i64, {n});
  for (int64_t i = 0; i < n; ++i) {
    b.ids.push_back(fmt::format("r{}", i));
    b.labels->as<int64_t>()[i] = 1000 + i;
    for (int64_t j = 0; j < dim; ++j) {
      if (dtype == DType::f32) {
        b.data.as<float>()[i * dim + j] = static_cast<float>(i) + static_cast<float>(j) / 8;
      } else {
        b.data.as<int32_t>()[i * dim + j] = static_cast<int32_t>(i * 100 + j);
      }
    }
  }
  return b;
}

DatasetSpec labelled_spec(const std::string& name, int64_t dim, DType dtype = DType::f32) {
  DatasetSpec s;
  s.name = name;
  s.dtype = dtype;
  s.row_shape = {dim};
  s.label_dtype = DType::i64;
  s.metric = Metric::euclidean;
  return s;
}

void check_same_samples(const RowBatch& got, const RowBatch& want) {
  REQUIRE(got.data.shape() == want.data.shape());
  CHECK(got.data.dtype() == want.data.dtype());
  CHECK(std::memcmp(got.data.data(), want.data.data(), want.data.nbytes()) == 0);
  REQUIRE(got.labels.has_value());
  REQUIRE(want.labels.has_value());
  CHECK(std::memcmp(got.labels->data(), want.labels->data(), want.labels->nbytes()) == 0);
  CHECK(got.ids.size() == want.ids.size());
}

pgvector::CatalogEntry entry_on(pgvector::Session& s, const pgvector::Tables& t, const std::string& name) {
  pgvector::CatalogEntry e;
  s.transact("test", [&](pqxx::work&) {
    const auto record = pgvector::PgDatasetRecords(s, t).get(name);
    REQUIRE(record.has_value());
    e = pgvector::entry_of(*record);
  });
  return e;
}

// The frontend messages read_samples_once sends, from libpq's protocol trace.
std::string traced(pgvector::Session& s, const std::function<void()>& fn) {
  const std::string path = testutil::unique_name("/tmp/vstash-pgtrace") + ".log";
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  PQtrace(s.raw(), f);
  PQsetTraceFlags(s.raw(), PQTRACE_SUPPRESS_TIMESTAMPS);
  fn();
  PQuntrace(s.raw());
  std::fclose(f);
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  std::remove(path.c_str());
  std::string frontend;
  std::istringstream lines(all.str());
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("F\t", 0) == 0) {
      std::istringstream words(line);
      std::string dir, len, kind;
      words >> dir >> len >> kind;
      frontend += kind + " ";
    }
  }
  return frontend;
}

}  // namespace

TEST_SUITE("backends::pgvector::decode") {
  TEST_CASE("a binary pgvector value decodes from big-endian float4 and a wrong size is refused") {
    const std::string wire("\x00\x02\x00\x00\x3f\x80\x00\x00\xc0\x20\x00\x00", 12);  // [1, -2.5]
    float out[2] = {0, 0};
    REQUIRE(pgvector::decode_vector_into(wire, out, 2));
    CHECK(out[0] == 1.0f);
    CHECK(out[1] == -2.5f);
    CHECK_FALSE(pgvector::decode_vector_into(wire, out, 3));                    // other dimensions
    CHECK_FALSE(pgvector::decode_vector_into(wire.substr(0, 8), out, 2));       // cut short
    CHECK_FALSE(pgvector::decode_vector_into(std::string("\x00", 1), out, 0));  // no header
  }
}

TEST_SUITE("backends::pgvector" * doctest::skip()) {
  TEST_CASE("a streamed batch on a dense dataset is one statement with the rows of read_positions, repeats kept") {
    const Profile p = reads_profile();
    auto b = create_backend(p);
    b->create_dataset(labelled_spec("s", 8));
    b->write_rows("s", labelled_rows(300, 8));
    auto s = pgtest::session_of(p);
    const pgvector::Tables t = pgvector::table_names(s, p.get_string("table_name"));
    const pgvector::CatalogEntry e = entry_on(s, t, "s");
    const std::vector<int64_t> positions{299, 0, 17, 17, 256, 3};
    std::optional<RowBatch> got;
    // Prepared at the first batch (its own round trip), then one round trip per batch.
    CHECK(traced(s, [&] { got = pgvector::read_samples_once(s, t.datasets, e, {1}); }) ==
          "Parse Sync Bind Describe Execute Sync ");
    CHECK(traced(s, [&] { got = pgvector::read_samples_once(s, t.datasets, e, positions); }) ==
          "Bind Describe Execute Sync ");
    REQUIRE(got.has_value());
    check_same_samples(*got, b->read_positions("s", positions));
    CHECK(got->indices == positions);
    check_same_samples(b->read_samples("s", positions), b->read_positions("s", positions));
    check_same_samples(b->read_samples("s", positions), b->read_positions("s", positions));

    // The catalog stops vouching: a position past the end, a deleted row, a dropped table.
    CHECK_FALSE(pgvector::read_samples_once(s, t.datasets, e, {300}).has_value());
    CHECK(b->delete_ids("s", {"r5"}) == 1);
    CHECK_FALSE(pgvector::read_samples_once(s, t.datasets, e, {1, 2}).has_value());
    CHECK(b->drop_dataset("s"));
    CHECK_FALSE(pgvector::read_samples_once(s, t.datasets, e, {1, 2}).has_value());
  }

  TEST_CASE("read_samples follows the catalog: rows deleted, a dataset recreated with another dtype, dropped") {
    const Profile p = reads_profile();
    auto b = create_backend(p);
    b->create_dataset(labelled_spec("s", 4));
    b->write_rows("s", labelled_rows(50, 4));
    const std::vector<int64_t> positions{7, 3, 40, 0};
    check_same_samples(b->read_samples("s", positions), b->read_positions("s", positions));  // learns "s"
    check_same_samples(b->read_samples("s", positions), b->read_positions("s", positions));  // one statement

    // Dropped and made again under the same name (the same rows table) with int32 samples.
    auto other = create_backend(p);
    CHECK(other->drop_dataset("s"));
    other->create_dataset(labelled_spec("s", 4, DType::i32));
    other->write_rows("s", labelled_rows(50, 4, DType::i32));
    const RowBatch again = b->read_samples("s", positions);
    CHECK(again.data.dtype() == DType::i32);
    CHECK(again.data.as<int32_t>()[0] == 700);
    check_same_samples(b->read_samples("s", positions), b->read_positions("s", positions));

    // Another process deletes a row: positions shift past it.
    CHECK(other->delete_ids("s", {"r2"}) == 1);
    const RowBatch shifted = b->read_samples("s", positions);
    check_same_samples(shifted, b->read_positions("s", positions));
    CHECK(shifted.labels->as<int64_t>()[1] == 1004);  // position 3 is now r4
    CHECK_THROWS_AS(b->read_samples("s", {49}), UsageError);

    CHECK(other->drop_dataset("s"));
    CHECK_THROWS_AS(b->read_samples("s", positions), NotFoundError);
  }
}
#endif
