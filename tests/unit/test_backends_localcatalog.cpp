// SPDX-License-Identifier: MIT
// The catalog (backends/common/catalog.hpp) over the local store's datasets table
// (backends/local/localcatalog.hpp): create, the conflict and not-found messages every backend
// shares, metadata merge, index reservation and remove, inside one write transaction.
#include <doctest/doctest.h>

#include "backends/local/localcatalog.hpp"
#include "tests/testutil.hpp"

using namespace vstash;
using namespace vstash::backends;
using namespace vstash::backends::local;

namespace {

DatasetSpec spec_of(int64_t dim, json metadata = json::object()) {
  DatasetSpec s;
  s.name = std::string("d");
  s.dtype = DType::f32;
  s.row_shape = {dim};
  s.metric = Metric::cosine;
  s.metadata = std::move(metadata);
  return s;
}

}  // namespace

TEST_SUITE("backends::local::catalog") {
  TEST_CASE("the catalog over the datasets table creates, merges metadata, reserves and removes") {
    const auto dir = testutil::scratch_dir("localcatalog");
    Connection conn((dir / "store.db").string());
    ensure_schema(conn);
    Transaction txn(conn, true);
    std::vector<std::string> obsolete;
    LocalDatasetRecords records(conn, obsolete);
    catalog::Catalog cat(records);

    CHECK(cat.create(spec_of(4, {{"source", "a.npy"}})));
    CHECK_FALSE(cat.create(spec_of(4, {{"split", "train"}})));
    const auto stored = find_dataset(conn, "d");
    REQUIRE(stored.has_value());
    CHECK(stored->spec.metadata == json{{"source", "a.npy"}, {"split", "train"}});

    CHECK(cat.reserve("d", 5) == 0);
    CHECK(cat.reserve("d", 3) == 5);
    CHECK(find_dataset(conn, "d")->next_index == 8);
    cat.advance("d", 4);
    CHECK(find_dataset(conn, "d")->next_index == 8);
    REQUIRE(records.list().size() == 1);
    CHECK(records.list()[0].spec.row_shape == Shape{4});

    CHECK(records.remove("d"));
    CHECK(obsolete.size() == 1);
    CHECK_FALSE(records.remove("d"));
    CHECK_FALSE(records.get("d").has_value());
  }

  TEST_CASE("a conflict and a missing dataset read as on every backend, the store's path first") {
    const auto dir = testutil::scratch_dir("localcatalog-messages");
    const std::string path = (dir / "store.db").string();
    Connection conn(path);
    ensure_schema(conn);
    Transaction txn(conn, true);
    std::vector<std::string> obsolete;
    LocalDatasetRecords records(conn, obsolete);
    catalog::Catalog cat(records);
    cat.create(spec_of(4));
    auto labelled = spec_of(8);
    labelled.label_dtype = DType::i64;
    try {
      cat.create(labelled);
      FAIL("no ConflictError");
    } catch (const ConflictError& e) {
      CHECK(std::string(e.what()) == path +
                                         ": dataset \"d\" exists as float32 (4,) cosine, no labels; requested float32 "
                                         "(8,) cosine, labels int64 ()");
    }
    try {
      require_dataset(conn, "missing");
      FAIL("no NotFoundError");
    } catch (const NotFoundError& e) {
      CHECK(std::string(e.what()) == path + ": dataset \"missing\" does not exist");
    }
  }
}
