// SPDX-License-Identifier: MIT
// Contract: THE filter matrix. One table of (filter, expected ids) over twelve rows with
// varied metadata, checked through query, count and delete_where, and against
// Filter::matches, so every backend agrees with the reference semantics of src/filter.hpp.
#include "tests/contract/contract.hpp"

using namespace vstash;
using namespace vstash::contract;

namespace {

const std::vector<json>& matrix_rows() {
  static const std::vector<json> rows = {
      json::parse(R"({"genre": "drama", "year": 2019, "score": 4.5, "draft": false, "tags": ["a", "b"]})"),
      json::parse(R"({"genre": "comedy", "year": 2020, "score": 3.0, "draft": true, "tags": ["b", "c"]})"),
      json::parse(R"({"genre": "drama", "year": 2021, "score": 2.5, "tags": ["c"]})"),
      json::parse(R"({"genre": "horror", "year": 2022, "score": 5, "draft": false})"),
      json::parse(R"({"year": 2023, "tags": []})"),
      json::parse(R"({})"),
      json(nullptr),
      json::parse(R"({"genre": "Drama", "year": "2019"})"),
      json::parse(R"({"genre": "drama", "year": 2019.0, "n": 1})"),
      json::parse(
          R"({"genre": "sci-fi", "year": 2024, "score": -1.5, "tags": ["a"], "draft": true, "city": "Zurich"})"),
      json::parse(R"({"genre": "comedy", "n": 1.5, "tags": ["x y", "a"], "city": "Zürich"})"),
      json::parse(R"({"genre": "drama", "year": 2018, "score": 0, "draft": false, "tags": ["b"]})"),
  };
  return rows;
}

struct MatrixCase {
  const char* filter;
  std::set<int> expected;  // row numbers
};

// Each operator, on present, missing and mistyped fields, alone and combined.
const std::vector<MatrixCase> k_cases = {
    {R"({})", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
    {R"({"genre": "drama"})", {0, 2, 8, 11}},
    {R"({"genre": {"$eq": "drama"}})", {0, 2, 8, 11}},
    {R"({"genre": {"$ne": "drama"}})", {1, 3, 4, 5, 6, 7, 9, 10}},
    {R"({"genre": "nope"})", {}},
    {R"({"year": 2019})", {0, 8}},
    {R"({"year": "2019"})", {7}},
    {R"({"year": {"$gt": 2020}})", {2, 3, 4, 9}},
    {R"({"year": {"$gte": 2019, "$lt": 2022}})", {0, 1, 2, 8}},
    {R"({"year": {"$lte": 2019}})", {0, 8, 11}},
    {R"({"year": {"$gt": 2019.5, "$lte": 2021}})", {1, 2}},
    {R"({"score": {"$lt": 3}})", {2, 9, 11}},
    {R"({"score": {"$gte": 4.5}})", {0, 3}},
    {R"({"score": {"$gt": -2, "$lt": 1}})", {9, 11}},
    {R"({"score": 5.0})", {3}},
    {R"({"score": 3})", {1}},
    {R"({"n": 1})", {8}},
    {R"({"n": {"$in": [1.5]}})", {10}},
    {R"({"draft": false})", {0, 3, 11}},
    {R"({"draft": true})", {1, 9}},
    {R"({"draft": {"$ne": true}})", {0, 2, 3, 4, 5, 6, 7, 8, 10, 11}},
    {R"({"draft": 0})", {}},
    {R"({"tags": "a"})", {0, 9, 10}},
    {R"({"tags": {"$in": ["c", "x y"]}})", {1, 2, 10}},
    {R"({"tags": {"$nin": ["a", "b"]}})", {2, 3, 4, 5, 6, 7, 8}},
    {R"({"tags": {"$ne": "b"}})", {2, 3, 4, 5, 6, 7, 8, 9, 10}},
    {R"({"genre": {"$in": ["comedy", "horror"]}})", {1, 3, 10}},
    {R"({"genre": {"$nin": ["drama", "comedy"]}})", {3, 4, 5, 6, 7, 9}},
    {R"({"year": {"$in": [2019, 2024]}})", {0, 8, 9}},
    {R"({"genre": {"$exists": false}})", {4, 5, 6}},
    {R"({"draft": {"$exists": true}})", {0, 1, 3, 9, 11}},
    {R"({"tags": {"$exists": true}})", {0, 1, 2, 4, 9, 10, 11}},
    {R"({"city": "Zürich"})", {10}},
    {R"({"genre": "drama", "year": {"$lt": 2020}})", {0, 8, 11}},
    {R"({"$or": [{"genre": "horror"}, {"score": {"$lt": 0}}]})", {3, 9}},
    {R"({"$and": [{"tags": "b"}, {"draft": false}]})", {0, 11}},
    {R"({"$or": [{"genre": {"$exists": false}}, {"year": {"$gt": 2023}}]})", {4, 5, 6, 9}},
    {R"({"$or": [{"$and": [{"genre": "drama"}, {"draft": {"$exists": false}}]},
                 {"tags": {"$in": ["c"]}, "year": {"$gte": 2020}}]})",
     {1, 2, 8}},
    {R"({"$and": [{"$or": [{"genre": "comedy"}, {"genre": "drama"}]}, {"draft": {"$ne": false}}]})", {1, 2, 8, 10}},
};

std::string row_id(int i) { return "m" + std::to_string(i); }

std::set<std::string> expected_ids(const MatrixCase& c) {
  std::set<std::string> out;
  for (int i : c.expected) {
    out.insert(row_id(i));
  }
  return out;
}

RowBatch matrix_batch() {
  const auto& rows = matrix_rows();
  const auto n = static_cast<int64_t>(rows.size());
  std::vector<std::string> ids;
  std::vector<int64_t> indices;
  for (int i = 0; i < static_cast<int>(n); ++i) {
    ids.push_back(row_id(i));
    indices.push_back(i);
  }
  return make_batch(ids, sample_array(DType::f32, {n, 4}, 40), rows, std::nullopt, indices);
}

}  // namespace

TEST_SUITE("contract::FilterMatrix") {
  TEST_CASE("the matrix agrees with the reference semantics of Filter::matches") {
    const auto& rows = matrix_rows();
    for (const auto& c : k_cases) {
      CAPTURE(c.filter);
      const auto f = Filter::parse(c.filter);
      std::set<int> got;
      for (int i = 0; i < static_cast<int>(rows.size()); ++i) {
        if (f.matches(rows[static_cast<size_t>(i)])) {
          got.insert(i);
        }
      }
      CHECK(got == c.expected);
    }
  }

  TEST_CASE("query, count and delete_where select exactly the matrix's rows") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    const auto batch = matrix_batch();
    b->write_rows(ds.name(), batch);
    const std::set<std::string> all = id_set(batch.ids);
    for (const auto& c : k_cases) {
      CAPTURE(c.filter);
      const auto f = Filter::parse(c.filter);
      const auto want = expected_ids(c);
      const auto hits = b->query(ds.name(), {0.5f, -0.25f, 1.0f, 0.125f}, {.top_k = 100, .filter = &f});
      CHECK(id_set(hit_ids(hits)) == want);
      CHECK(hits.size() == want.size());
      CHECK(b->count(ds.name(), &f) == static_cast<int64_t>(want.size()));

      CHECK(b->delete_where(ds.name(), f) == static_cast<int64_t>(want.size()));
      std::set<std::string> rest;
      std::set_difference(all.begin(), all.end(), want.begin(), want.end(), std::inserter(rest, rest.end()));
      CHECK(stored_ids(*b, ds.name()) == rest);
      b->write_rows(ds.name(), batch);  // restore for the next case
      REQUIRE(b->count(ds.name(), nullptr) == static_cast<int64_t>(all.size()));
    }
  }
}
