// SPDX-License-Identifier: MIT
// Contract: query_many (a block of queries at once) returns, query by query, exactly what
// query() returns: same ids, indices, scores (bit for bit), values and metadata, with and
// without a filter, for every metric, with exact ties among the rows.
#include "src/errors.hpp"
#include "src/filter.hpp"
#include "tests/contract/contract.hpp"

using namespace vstash;
using namespace vstash::contract;
using vstash::backends::QueryOptions;

namespace {

void check_same(const std::vector<QueryHit>& got, const std::vector<QueryHit>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].id == want[i].id);
    CHECK(got[i].index == want[i].index);
    CHECK(got[i].score == want[i].score);
    CHECK(got[i].values == want[i].values);
    CHECK(got[i].metadata == want[i].metadata);
  }
}

}  // namespace

TEST_SUITE("contract::QueryMany") {
  TEST_CASE("query_many equals query() per row, with and without a filter") {
    auto b = make_contract_backend();
    const int64_t rows = 40;
    const int64_t dim = 8;
    for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
      CAPTURE(backends::metric_name(metric));
      TempDataset ds(*b, vector_spec(dim, metric));
      Array data = sample_array(DType::f32, {rows, dim}, 40);
      // Exact ties: rows 30.. repeat rows 0..
      for (int64_t r = 30; r < rows; ++r) {
        std::copy_n(data.as<float>() + (r - 30) * dim, dim, data.as<float>() + r * dim);
      }
      std::vector<json> metadata;
      for (int64_t r = 0; r < rows; ++r) {
        metadata.push_back({{"g", r % 3}});
      }
      b->write_rows(ds.name(), make_batch(make_ids("m", rows), data, metadata));

      const int64_t n = 5;
      const Array qa = sample_array(DType::f32, {n, dim}, 41);
      std::vector<float> queries(qa.as<float>(), qa.as<float>() + n * dim);
      std::copy_n(data.as<float>() + 3 * dim, dim, queries.begin() + dim);  // a stored row, tied with row 33

      const auto in_02 = Filter::parse(R"({"g": {"$in": [0, 2]}})");
      for (const Filter* filter : {static_cast<const Filter*>(nullptr), &in_02}) {
        for (const int64_t k : {int64_t{1}, int64_t{7}, int64_t{100}}) {
          CAPTURE(filter != nullptr);
          CAPTURE(k);
          QueryOptions o;
          o.top_k = k;
          o.filter = filter;
          o.include_values = k == 7;
          const auto many = b->query_many(ds.name(), queries, static_cast<size_t>(n), o);
          REQUIRE(many.size() == static_cast<size_t>(n));
          for (int64_t i = 0; i < n; ++i) {
            CAPTURE(i);
            const std::vector<float> one(queries.begin() + i * dim, queries.begin() + (i + 1) * dim);
            check_same(many[static_cast<size_t>(i)], b->query(ds.name(), one, o));
          }
        }
      }
      CHECK(b->query_many(ds.name(), {}, 0, {}).empty());
      CHECK_THROWS_AS(b->query_many(ds.name(), std::vector<float>(6, 1.0f), 2, {}), UsageError);
    }
  }
}
