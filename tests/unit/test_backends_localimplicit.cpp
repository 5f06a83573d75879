// SPDX-License-Identifier: MIT
// Implicit rows of the local store (layout 3, backends/local/localimplicit.cpp): rows written
// with their decimal index as id and no metadata cost no `rows` entry; every reader (read_rows,
// positions, fetch, query, filters, count) merges them with the explicit rows; update, delete,
// upsert, a re-sent batch and compaction keep the same answers as explicit rows would; a
// layout 2 store is read as it is read-only and migrated by a read-write open.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>
#include <set>
#include <string>

#include "backends/local/localbackend.hpp"
#include "backends/local/localstore.hpp"
#include "src/errors.hpp"
#include "src/filter.hpp"
#include "src/profile.hpp"
#include "tests/testutil.hpp"

using namespace vstash;
using namespace vstash::backends;

namespace {

constexpr int64_t k_dim = 4;

// Row number n at version v: [n, v, n, v], so every row read can be told apart.
std::vector<float> values(int64_t n, int64_t v) {
  const auto a = static_cast<float>(n);
  const auto b = static_cast<float>(v);
  return {a, b, a, b};
}

// Rows first..first+n-1 at version v, ids the decimal indices (what `ingest` without --ids sends).
RowBatch decimal_rows(int64_t first, int64_t n, int64_t v, bool with_indices = true) {
  RowBatch b;
  std::vector<std::byte> bytes;
  for (int64_t i = first; i < first + n; ++i) {
    const auto row = values(i, v);
    const auto* p = reinterpret_cast<const std::byte*>(row.data());
    bytes.insert(bytes.end(), p, p + sizeof(float) * k_dim);
    b.ids.push_back(std::to_string(i));
    if (with_indices) {
      b.indices.push_back(i);
    }
    b.metadata.push_back(nullptr);
  }
  b.data = Array(DType::f32, {n, k_dim}, std::move(bytes));
  return b;
}

RowBatch one_row(const std::string& id, std::optional<int64_t> index, int64_t n, int64_t v) {
  RowBatch b = decimal_rows(n, 1, v, false);
  b.ids = {id};
  if (index) {
    b.indices = {*index};
  }
  return b;
}

DatasetSpec spec_named(const std::string& name) {
  DatasetSpec spec;
  spec.name = name;
  spec.dtype = DType::f32;
  spec.row_shape = {k_dim};
  spec.metric = Metric::euclidean;
  return spec;
}

Profile profile_at(const std::filesystem::path& dir) {
  return Profile("t", "local", {{"path", (dir / "store.db").string()}}, "test");
}

struct Store {
  explicit Store(const std::string& name) : dir(testutil::scratch_dir(name)), db(local::create(profile_at(dir))) {
    db->create_dataset(spec_named("d"));
  }

  // SELECT's first column on the store's file, from a connection of its own.
  int64_t sql(const std::string& query) const {
    local::Connection c((dir / "store.db").string());
    auto s = c.prepare(query);
    REQUIRE(s.step());
    return s.int_at(0);
  }

  // "idx:id:number:version " of every row in order, as read_rows gives them.
  std::string rows() const {
    const RowBatch b = db->read_rows("d", 0, 1 << 20);
    std::string out;
    for (size_t i = 0; i < b.size(); ++i) {
      const auto* x = reinterpret_cast<const float*>(b.data.row(static_cast<int64_t>(i)).data());
      out += fmt::format("{}:{}:{}:{} ", b.indices[i], b.ids[i], x[0], x[1]);
    }
    return out;
  }

  std::filesystem::path dir;
  std::unique_ptr<Backend> db;
};

// The rows string of rows first..last (inclusive) at version v, skipping `gone`.
std::string expect(int64_t first, int64_t last, int64_t v, std::set<int64_t> gone = {}) {
  std::string out;
  for (int64_t i = first; i <= last; ++i) {
    if (!gone.count(i)) {
      out += fmt::format("{}:{}:{}:{} ", i, i, i, v);
    }
  }
  return out;
}

}  // namespace

TEST_SUITE("backends::local::implicit") {
  TEST_CASE("decimal ids at the next indices write no rows entry and every reader sees them") {
    Store st("localimplicit-read");
    st.db->write_rows("d", decimal_rows(0, 50, 0));
    st.db->write_rows("d", decimal_rows(50, 50, 0, false));  // auto-assigned indices
    CHECK(st.sql("SELECT count(*) FROM rows") == 0);
    CHECK(st.sql("SELECT implicit_rows FROM datasets") == 100);
    CHECK(st.rows() == expect(0, 99, 0));
    const auto info = st.db->dataset_info("d");
    CHECK(info->rows == 100);
    CHECK(info->next_index == 100);
    CHECK(info->bytes == 100 * 16);

    const RowBatch f = st.db->fetch("d", {"5", "99", "100", "05", "-1", "x"});
    CHECK(f.ids == std::vector<std::string>{"5", "99"});
    CHECK(f.indices == std::vector<int64_t>{5, 99});
    const RowBatch p = st.db->read_positions("d", {97, 3});
    CHECK(p.ids == std::vector<std::string>{"97", "3"});
    CHECK(reinterpret_cast<const float*>(p.data.data())[0] == 97.0f);

    QueryOptions o;
    o.top_k = 2;
    o.exact = true;
    o.include_values = true;
    auto hits = st.db->query("d", values(42, 0), o);
    REQUIRE(hits.size() == 2);
    CHECK(hits[0].id == "42");
    CHECK(hits[0].index == 42);
    CHECK(hits[0].values->at(0) == 42.0f);
    CHECK(hits[0].metadata.is_null());
    const Filter none = Filter::parse(R"({"k": 1})");
    CHECK(st.db->count("d", &none) == 0);
    const Filter missing = Filter::parse(R"({"k": {"$exists": false}})");
    CHECK(st.db->count("d", &missing) == 100);
  }

  TEST_CASE("update materialises, delete tombstones, upsert and conflicts follow the explicit rules") {
    Store st("localimplicit-write");
    st.db->write_rows("d", decimal_rows(0, 100, 0));
    // Update: new sample and metadata for row 7; the rest stay implicit.
    const auto new7 = values(7, 1);
    st.db->update_row("d", "7",
                      Array(DType::f32, {k_dim},
                            std::vector<std::byte>(reinterpret_cast<const std::byte*>(new7.data()),
                                                   reinterpret_cast<const std::byte*>(new7.data()) + 16)),
                      json{{"k", 1}});
    CHECK(st.sql("SELECT count(*) FROM rows") == 1);
    const RowBatch f = st.db->fetch("d", {"7"});
    REQUIRE(f.size() == 1);
    CHECK(f.metadata[0] == json{{"k", 1}});
    CHECK(reinterpret_cast<const float*>(f.data.data())[1] == 1.0f);
    const Filter k1 = Filter::parse(R"({"k": 1})");
    CHECK(st.db->count("d", &k1) == 1);
    QueryOptions o;
    o.top_k = 1;
    o.exact = true;
    o.filter = &k1;
    CHECK(st.db->query("d", values(0, 0), o).at(0).id == "7");
    CHECK_THROWS_AS(st.db->update_row("d", "100", std::nullopt, json{{"k", 2}}), NotFoundError);

    // Delete: an implicit row (twice: once), an explicit one through a filter.
    CHECK(st.db->delete_ids("d", {"3", "3", "100"}) == 1);
    CHECK(st.db->fetch("d", {"3"}).size() == 0);
    CHECK_THROWS_AS(st.db->update_row("d", "3", std::nullopt, json{{"k", 2}}), NotFoundError);
    CHECK(st.db->delete_where("d", k1) == 1);
    CHECK(st.db->count("d", nullptr) == 98);
    CHECK(st.rows() == expect(0, 99, 0, {3, 7}));

    // Upsert of an implicit id keeps its index; another id at an implicit index is a conflict.
    st.db->write_rows("d", one_row("10", std::nullopt, 10, 2));
    CHECK_THROWS_AS(st.db->write_rows("d", one_row("x", 20, 20, 2)), ConflictError);
    st.db->write_rows("d", one_row("x", 3, 3, 2));  // a deleted index may be taken again
    CHECK(st.db->fetch("d", {"x"}).indices == std::vector<int64_t>{3});
    const std::string want = expect(0, 2, 0) + "3:x:3:2 " + expect(4, 9, 0, {7}) + "10:10:10:2 " + expect(11, 99, 0);
    CHECK(st.rows() == want);
    // Later batches go explicit (the slots no longer follow the indices) and stay readable.
    st.db->write_rows("d", decimal_rows(100, 10, 4));
    CHECK(st.rows() == want + expect(100, 109, 4));
    CHECK(st.db->count("d", nullptr) == 109);
  }

  TEST_CASE("a re-sent batch (ingest --resume) replaces rows: no duplicate, no gap") {
    Store st("localimplicit-resend");
    st.db->write_rows("d", decimal_rows(0, 100, 0));
    // The same rows again plus new ones: the committed ones are unchanged, all stay implicit.
    st.db->write_rows("d", decimal_rows(50, 100, 0));
    CHECK(st.sql("SELECT count(*) FROM rows") == 0);
    CHECK(st.sql("SELECT implicit_rows FROM datasets") == 150);
    CHECK(st.rows() == expect(0, 149, 0));
    // Changed rows sent again replace the stored ones (the upsert rule materialises them).
    st.db->write_rows("d", decimal_rows(120, 40, 1));
    CHECK(st.rows() == expect(0, 119, 0) + expect(120, 159, 1));
    CHECK(st.db->count("d", nullptr) == 160);
    CHECK(st.sql("SELECT count(*) FROM rows") == 40);
  }

  TEST_CASE("compaction keeps every row and the implicit prefix") {
    Store st("localimplicit-compact");
    st.db->write_rows("d", decimal_rows(0, 100, 0));
    CHECK(st.db->delete_ids("d", {"5", "60"}) == 2);
    st.db->update_row("d", "8", std::nullopt, json{{"k", 1}});
    const auto before = st.rows();
    st.db->compact("d");
    CHECK(st.rows() == before);
    CHECK(st.sql("SELECT implicit_rows FROM datasets") == 5);
    CHECK(st.sql("SELECT count(*) FROM row_deletions") == 0);
    CHECK(st.sql("SELECT slots FROM datasets") == 98);
    CHECK(st.db->fetch("d", {"8"}).metadata.at(0) == json{{"k", 1}});
    CHECK(st.db->fetch("d", {"99", "4", "5"}).ids == std::vector<std::string>{"99", "4"});
    CHECK(st.db->read_positions("d", {97}).ids == std::vector<std::string>{"99"});
    // Updates after the compaction go to new slots as before.
    st.db->update_row("d", "2", std::nullopt, json{{"k", 2}});
    CHECK(st.db->fetch("d", {"2"}).metadata.at(0) == json{{"k", 2}});
    CHECK(st.db->count("d", nullptr) == 98);
  }

  TEST_CASE("a layout 2 store is read as it is read-only and migrated by a read-write open") {
    const auto dir = testutil::scratch_dir("localimplicit-layout2");
    {
      auto db = local::create(profile_at(dir));
      db->create_dataset(spec_named("old"));
      RowBatch b = decimal_rows(0, 10, 0);
      for (auto& id : b.ids) {
        id = "r" + id;
      }
      db->write_rows("old", b);
    }
    {
      // Back to layout 2 as that build wrote it: no implicit_rows column, no row_deletions.
      local::Connection c((dir / "store.db").string());
      c.exec(
          "ALTER TABLE datasets DROP COLUMN implicit_rows; DROP TABLE row_deletions; "
          "UPDATE meta SET value = '2' WHERE key = 'layout_version'");
    }
    auto ro = local::open_read_only(profile_at(dir));
    CHECK(ro->read_rows("old", 0, 100).ids.at(9) == "r9");
    CHECK(ro->fetch("old", {"r3"}).indices == std::vector<int64_t>{3});
    auto rw = local::create(profile_at(dir));  // migrates (one line on stderr)
    CHECK(rw->stats().extra["layout_version"] == 3);
    CHECK(rw->read_rows("old", 0, 100).ids.at(9) == "r9");
    rw->create_dataset(spec_named("new"));
    rw->write_rows("new", decimal_rows(0, 20, 0));
    // The reader opened on layout 2 sees the migration in its next snapshot: never a misread.
    CHECK(ro->read_rows("new", 0, 100).size() == 20);
    CHECK(ro->read_rows("old", 0, 100).size() == 10);
  }
}
