// SPDX-License-Identifier: MIT
// Contract: filters on the reserved key $label (src/filter.hpp) select the same rows through
// query, count and delete_where on every backend, for integer, float and bool labels, beside
// a metadata key named "label" that is not the label; a dataset without scalar labels refuses
// them with a UsageError naming it.
#include <cstring>

#include "src/errors.hpp"
#include "tests/contract/contract.hpp"

using namespace vstash;
using namespace vstash::contract;

namespace {

struct LabelCase {
  const char* filter;
  std::set<int> expected;  // row numbers
};

template <class T>
Array label_array(DType dtype, const std::vector<T>& values) {
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return Array(dtype, {static_cast<int64_t>(values.size())}, std::move(bytes));
}

std::string row_id(int i) { return "l" + std::to_string(i); }

// Writes the rows (labels and metadata), then checks every case through query, count and
// delete_where, and against Filter::matches over the same labels.
void check_cases(Array labels, const std::vector<json>& metadata, const std::vector<LabelCase>& cases) {
  auto b = make_contract_backend();
  const auto n = labels.rows();
  DatasetSpec spec = vector_spec(4);
  spec.label_dtype = labels.dtype();
  TempDataset ds(*b, spec);
  std::vector<std::string> ids;
  std::vector<int64_t> indices;
  for (int i = 0; i < static_cast<int>(n); ++i) {
    ids.push_back(row_id(i));
    indices.push_back(i);
  }
  const RowBatch batch = make_batch(ids, sample_array(DType::f32, {n, 4}, 17), metadata, labels, indices);
  b->write_rows(ds.name(), batch);
  const std::set<std::string> all = id_set(ids);
  for (const auto& c : cases) {
    CAPTURE(c.filter);
    const auto f = Filter::parse(c.filter);
    std::set<std::string> want;
    std::set<int> reference;
    for (int i : c.expected) {
      want.insert(row_id(i));
    }
    for (int i = 0; i < static_cast<int>(n); ++i) {
      if (f.matches(metadata[static_cast<size_t>(i)], label_value(labels.dtype(), labels.row(i).data()))) {
        reference.insert(i);
      }
    }
    CHECK(reference == c.expected);
    backends::QueryOptions options;
    options.top_k = 100;
    options.filter = &f;
    const auto hits = b->query(ds.name(), {0.5f, -0.25f, 1.0f, 0.125f}, options);
    CHECK(id_set(hit_ids(hits)) == want);
    CHECK(hits.size() == want.size());
    CHECK(b->count(ds.name(), &f) == static_cast<int64_t>(want.size()));
    CHECK(b->delete_where(ds.name(), f) == static_cast<int64_t>(want.size()));
    std::set<std::string> rest;
    std::set_difference(all.begin(), all.end(), want.begin(), want.end(), std::inserter(rest, rest.end()));
    CHECK(stored_ids(*b, ds.name()) == rest);
    b->write_rows(ds.name(), batch);  // restore for the next case
    REQUIRE(b->count(ds.name(), nullptr) == n);
  }
}

}  // namespace

TEST_SUITE("contract::LabelFilter") {
  TEST_CASE("$label selects integer labels with every operator, apart from a metadata key named label") {
    const std::vector<int64_t> labels = {0, 1, 2, 3, 4, 5, 3, 5, 7, -2, 9, 3};
    std::vector<json> md(labels.size(), json(nullptr));
    md[0] = json{{"label", 3}, {"genre", "a"}};
    md[3] = json{{"genre", "a"}};
    md[5] = json{{"genre", "b"}, {"label", 5}};
    md[11] = json{{"genre", "a"}};
    check_cases(label_array(DType::i64, labels), md,
                {
                    {R"({"$label": 3})", {3, 6, 11}},
                    {R"({"$label": {"$eq": 3.0}})", {3, 6, 11}},
                    {R"({"$label": {"$in": [3, 5]}})", {3, 5, 6, 7, 11}},
                    {R"({"$label": {"$nin": [3, 5]}})", {0, 1, 2, 4, 8, 9, 10}},
                    {R"({"$label": {"$ne": 3}})", {0, 1, 2, 4, 5, 7, 8, 9, 10}},
                    {R"({"$label": {"$gte": 2, "$lt": 5}})", {2, 3, 4, 6, 11}},
                    {R"({"$label": {"$gt": 4.5}})", {5, 7, 8, 10}},
                    {R"({"$label": {"$lte": -1}})", {9}},
                    {R"({"$label": "3"})", {}},
                    {R"({"$label": true})", {}},
                    {R"({"$label": {"$in": ["3", 5]}})", {5, 7}},
                    {R"({"$label": {"$nin": ["3"]}})", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
                    {R"({"label": 3})", {0}},
                    {R"({"$label": {"$in": [3, 5]}, "genre": "a"})", {3, 11}},
                    {R"({"$or": [{"$label": 0}, {"genre": "b"}]})", {0, 5}},
                    {R"({"$and": [{"$label": {"$gt": 0}}, {"$label": {"$lt": 3}}]})", {1, 2}},
                });
  }

  TEST_CASE("$label compares float labels by their float64 value") {
    const std::vector<float> labels = {0.5f, 1.25f, -3.0f, 0.1f, 2.0f};
    check_cases(label_array(DType::f32, labels), std::vector<json>(labels.size(), json(nullptr)),
                {
                    {R"({"$label": 0.5})", {0}},
                    {R"({"$label": 2})", {4}},
                    {R"({"$label": 0.1})", {}},
                    {R"({"$label": {"$gt": 1}})", {1, 4}},
                    {R"({"$label": {"$lte": -3}})", {2}},
                    {R"({"$label": {"$ne": 0.5}})", {1, 2, 3, 4}},
                });
  }

  TEST_CASE("$label matches bool labels only with true and false") {
    const std::vector<uint8_t> labels = {1, 0, 1, 0};
    check_cases(label_array(DType::b1, labels), std::vector<json>(labels.size(), json(nullptr)),
                {
                    {R"({"$label": true})", {0, 2}},
                    {R"({"$label": false})", {1, 3}},
                    {R"({"$label": {"$ne": true}})", {1, 3}},
                    {R"({"$label": 1})", {}},
                    {R"({"$label": {"$gt": 0}})", {}},
                    {R"({"$label": {"$in": [1, 0]}})", {}},
                });
  }

  TEST_CASE("$label on a dataset without scalar labels is a usage error naming the dataset") {
    auto b = make_contract_backend();
    const auto f = Filter::parse(R"({"$label": {"$in": [3, 5]}})");
    backends::QueryOptions options;
    options.top_k = 3;
    options.filter = &f;
    auto refused = [&](const std::string& dataset) {
      const std::string where = "dataset \"" + dataset + "\"";
      CHECK_THROWS_WITH_AS(b->count(dataset, &f), doctest::Contains(where.c_str()), UsageError);
      CHECK_THROWS_WITH_AS(b->query(dataset, {1, 0, 0, 0}, options), doctest::Contains(where.c_str()), UsageError);
      CHECK_THROWS_WITH_AS(b->delete_where(dataset, f), doctest::Contains(where.c_str()), UsageError);
      CHECK(b->count(dataset, nullptr) == 3);
    };
    {
      TempDataset ds(*b, vector_spec(4));
      b->write_rows(ds.name(), make_batch(make_ids("u", 3), sample_array(DType::f32, {3, 4}, 5)));
      refused(ds.name());
    }
    {
      DatasetSpec spec = vector_spec(4);
      spec.label_dtype = DType::i64;
      spec.label_shape = {2};
      TempDataset ds(*b, spec);
      b->write_rows(ds.name(), make_batch(make_ids("v", 3), sample_array(DType::f32, {3, 4}, 6), {},
                                          sample_array(DType::i64, {3, 2}, 7)));
      refused(ds.name());
    }
  }
}
