// SPDX-License-Identifier: MIT
// The catalog's rules (backends/common/catalog.hpp) over an in-memory table of records whose
// compare-and-set can be made to lose, as it does when another process writes in between.
#include <doctest/doctest.h>

#include <functional>
#include <map>

#include "backends/common/catalog.hpp"

using namespace vstash;
using namespace vstash::backends;
using namespace vstash::backends::catalog;

namespace {

class MemoryRecords final : public DatasetRecords {
 public:
  std::string location() const override { return "mem"; }
  std::optional<DatasetRecord> get(const std::string& name) override {
    auto it = m_records.find(name);
    return it == m_records.end() ? std::nullopt : std::optional(it->second);
  }
  std::vector<DatasetRecord> list() override {
    std::vector<DatasetRecord> out;
    for (const auto& [name, r] : m_records) {
      out.push_back(r);
    }
    return out;
  }
  bool insert(const DatasetRecord& record) override {
    if (before_write) {
      before_write();
    }
    DatasetRecord r = record;
    r.version = std::string("1");
    return m_records.emplace(r.spec.name, r).second;
  }
  bool compare_and_set(const DatasetRecord& seen, const DatasetRecord& next) override {
    if (before_write) {
      before_write();
    }
    auto it = m_records.find(seen.spec.name);
    if (it == m_records.end() || it->second.version != seen.version) {
      return false;
    }
    it->second = next;
    it->second.version = std::to_string(std::stoi(seen.version) + 1);
    return true;
  }
  bool remove(const std::string& name) override { return m_records.erase(name) > 0; }

  std::map<std::string, DatasetRecord> m_records;
  std::function<void()> before_write;  // another process's write, just before ours
};

DatasetSpec spec(const std::string& name) {
  DatasetSpec s;
  s.name = name;
  s.row_shape = {4};
  s.label_dtype = DType::i64;
  return s;
}

}  // namespace

TEST_SUITE("backends::catalog") {
  TEST_CASE("a spec reads the same in every message, with or without labels") {
    DatasetSpec s = spec("d");
    CHECK(describe(s) == "float32 (4,) cosine, labels int64 ()");
    s.label_dtype.reset();
    CHECK(describe(s) == "float32 (4,) cosine, no labels");
    DatasetSpec other = spec("d");
    other.metric = Metric::dot;
    CHECK(std::string(spec_conflict("mem", spec("d"), other).what()) ==
          "mem: dataset \"d\" exists as float32 (4,) cosine, labels int64 (); requested float32 (4,) dot, labels int64 "
          "()");
    CHECK(std::string(dataset_not_found("mem", "x").what()) == "mem: dataset \"x\" does not exist");
  }

  TEST_CASE("compatibility ignores the label shape of a dataset without labels") {
    DatasetSpec a = spec("d");
    a.label_dtype.reset();
    DatasetSpec b = a;
    b.label_shape = {3};
    CHECK(compatible(a, b));
    DatasetSpec c = spec("d");
    DatasetSpec d = spec("d");
    d.label_shape = {3};
    CHECK_FALSE(compatible(c, d));
    CHECK_FALSE(compatible(a, c));
  }

  TEST_CASE("the JSON form round-trips and the older form without label keys still reads") {
    DatasetSpec s = spec("d");
    s.row_shape = {2, 3};
    s.metadata = {{"k", 1}};
    const DatasetSpec back = spec_from_json("d", spec_to_json(s), "d");
    CHECK(compatible(back, s));
    CHECK(back.metadata == s.metadata);
    const json old = {{"dtype", "float32"}, {"row_shape", {4}}, {"metric", "cosine"}};
    CHECK_FALSE(spec_from_json("d", old, "d").label_dtype.has_value());
    CHECK_THROWS_WITH_AS(spec_from_json("d", json{{"dtype", "float32"}}, "dataset \"d\": catalog entry"),
                         doctest::Contains("dataset \"d\": catalog entry: corrupt catalog entry"), Error);
    CHECK_THROWS_WITH_AS(spec_from_json("d", {{"dtype", "nope"}, {"row_shape", {4}}, {"metric", "cosine"}}, "w"),
                         doctest::Contains("w: corrupt catalog entry"), Error);
    CHECK_THROWS_AS(
        spec_from_json("d", {{"dtype", "float32"}, {"row_shape", {int64_t{1} << 40}}, {"metric", "dot"}}, "w"), Error);
    // A zero dimension is corrupt too: no dataset is created with one, and its rows would be empty
    // buffers (tests/fuzz/regressions/pinecone/catalog_zero_dim.bin).
    CHECK_THROWS_WITH_AS(spec_from_json("d", {{"dtype", "float32"}, {"row_shape", {0}}, {"metric", "dot"}}, "w"),
                         doctest::Contains("w: corrupt shape (0,)"), Error);
  }

  TEST_CASE("create makes a dataset once, then merges metadata and refuses another spec") {
    MemoryRecords records;
    Catalog catalog(records);
    DatasetSpec s = spec("d");
    s.metadata = {{"a", 1}};
    CHECK(catalog.create(s));
    s.metadata = {{"b", 2}};
    CHECK_FALSE(catalog.create(s));
    CHECK(catalog.require("d").spec.metadata == json{{"a", 1}, {"b", 2}});
    DatasetSpec other = spec("d");
    other.row_shape = {5};
    CHECK_THROWS_AS(catalog.create(other), ConflictError);
    CHECK_THROWS_AS(catalog.require("nope"), NotFoundError);
  }

  TEST_CASE("create retries when another process changes the record in between") {
    MemoryRecords records;
    Catalog catalog(records);
    catalog.create(spec("d"));
    int interruptions = 3;
    records.before_write = [&] {
      if (interruptions-- > 0) {
        records.m_records["d"].version += "x";  // someone else's write
      }
    };
    DatasetSpec s = spec("d");
    s.metadata = {{"z", true}};
    CHECK_FALSE(catalog.create(s));
    CHECK(records.m_records["d"].spec.metadata == json{{"z", true}});
  }

  TEST_CASE("create checks the dataset another process made first") {
    MemoryRecords records;
    Catalog catalog(records);
    records.before_write = [&] {
      records.before_write = nullptr;
      DatasetRecord theirs;
      theirs.spec = spec("d");
      theirs.spec.row_shape = {7};
      theirs.version = std::string("1");
      records.m_records["d"] = theirs;
    };
    CHECK_THROWS_AS(catalog.create(spec("d")), ConflictError);
  }

  TEST_CASE("reserve hands out disjoint index ranges and gives up on endless contention") {
    MemoryRecords records;
    Catalog catalog(records);
    catalog.create(spec("d"));
    CHECK(catalog.reserve("d", 10) == 0);
    CHECK(catalog.reserve("d", 5) == 10);
    catalog.advance("d", 12);
    CHECK(catalog.require("d").next_index == 15);
    catalog.advance("d", 40);
    CHECK(catalog.require("d").next_index == 40);
    records.before_write = [&] { records.m_records["d"].version += "x"; };
    CHECK_THROWS_AS(catalog.reserve("d", 1), ConflictError);
    CHECK_THROWS_AS(catalog.reserve("nope", 1), NotFoundError);
  }
}
