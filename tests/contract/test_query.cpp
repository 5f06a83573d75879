// SPDX-License-Identifier: MIT
// Contract: query scores, ordering and options, checked against exact scoring.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "backends/common/scoring.hpp"
#include "src/errors.hpp"
#include "tests/contract/contract.hpp"

using namespace vstash;
using namespace vstash::contract;
using vstash::backends::exact_score;
using vstash::backends::QueryOptions;
using vstash::backends::ranks_before;

namespace {

struct Expected {
  std::string id;
  double score;
};

// Every row ranked by exact score, best first, ties by index.
std::vector<Expected> exact_ranking(Metric metric, const Array& data, const std::vector<std::string>& ids,
                                    const std::vector<float>& q) {
  const auto dim = static_cast<size_t>(data.shape()[1]);
  std::vector<size_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  std::vector<double> scores;
  for (size_t i = 0; i < ids.size(); ++i) {
    scores.push_back(exact_score(metric, q.data(), data.as<float>() + i * dim, dim));
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ranks_before(metric, scores[a], scores[b]); });
  std::vector<Expected> out;
  for (auto i : order) {
    out.push_back({ids[i], scores[i]});
  }
  return out;
}

void check_hits(const std::vector<QueryHit>& hits, const std::vector<Expected>& want, size_t k) {
  REQUIRE(hits.size() == std::min(k, want.size()));
  for (size_t i = 0; i < hits.size(); ++i) {
    CAPTURE(i);
    CHECK(hits[i].id == want[i].id);
    CHECK(std::abs(hits[i].score - want[i].score) <= 1e-4 * std::max(1.0, std::abs(want[i].score)));
  }
}

}  // namespace

TEST_SUITE("contract::Query") {
  TEST_CASE("query ranks by exact cosine, euclidean and dot scores") {
    auto b = make_contract_backend();
    for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
      CAPTURE(backends::metric_name(metric));
      TempDataset ds(*b, vector_spec(8, metric));
      const Array data = sample_array(DType::f32, {20, 8}, 30);
      const auto ids = make_ids("q", 20);
      b->write_rows(ds.name(), make_batch(ids, data));
      const auto qa = sample_array(DType::f32, {8}, 31);
      const std::vector<float> q(qa.as<float>(), qa.as<float>() + 8);
      const auto want = exact_ranking(metric, data, ids, q);
      check_hits(b->query(ds.name(), q, {.top_k = 5}), want, 5);
      // A stored row queried against itself is its own best match.
      const std::vector<float> self(data.as<float>() + 7 * 8, data.as<float>() + 8 * 8);
      const auto hits = b->query(ds.name(), self, {.top_k = 1});
      REQUIRE(hits.size() == 1);
      if (metric != Metric::dot) {
        CHECK(hits[0].id == "q7");
      }
    }
  }

  TEST_CASE("query with exact set returns the exact scan's ranking; stores without it refuse") {
    auto b = make_contract_backend();
    for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
      CAPTURE(backends::metric_name(metric));
      TempDataset ds(*b, vector_spec(8, metric));
      const Array data = sample_array(DType::f32, {300, 8}, 40);
      const auto ids = make_ids("x", 300);
      b->write_rows(ds.name(), make_batch(ids, data));
      const auto qa = sample_array(DType::f32, {8}, 41);
      const std::vector<float> q(qa.as<float>(), qa.as<float>() + 8);
      if (b->kind() == "pinecone") {
        CHECK_THROWS_WITH_AS(b->query(ds.name(), q, {.top_k = 10, .exact = true}),
                             "--exact is not supported by pinecone", UsageError);
        CHECK_THROWS_AS(b->query(ds.name(), q, {.top_k = 10, .ef = 64}), UsageError);
        continue;
      }
      const auto want = exact_ranking(metric, data, ids, q);
      check_hits(b->query(ds.name(), q, {.top_k = 10, .exact = true}), want, 10);
      // ef widens or narrows an ANN search; the hits stay k, best first.
      const auto wide = b->query(ds.name(), q, {.top_k = 10, .ef = 64});
      REQUIRE(wide.size() == 10);
      for (size_t i = 1; i < wide.size(); ++i) {
        CHECK_FALSE(ranks_before(metric, wide[i].score, wide[i - 1].score));
      }
    }
  }

  TEST_CASE("top_k larger than the dataset returns every row, best first") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4, Metric::euclidean));
    const Array data = sample_array(DType::f32, {6, 4}, 32);
    const auto ids = make_ids("k", 6);
    b->write_rows(ds.name(), make_batch(ids, data));
    const std::vector<float> q{0.1f, -0.2f, 0.3f, 0.4f};
    check_hits(b->query(ds.name(), q, {.top_k = 100}), exact_ranking(Metric::euclidean, data, ids, q), 100);
  }

  TEST_CASE("query returns values and metadata only when asked") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    const Array data = sample_array(DType::f32, {3, 4}, 33);
    b->write_rows(ds.name(), make_batch({"a", "b", "c"}, data, {{{"tag", "x"}, {"n", 1}}, {{"tag", "y"}}, nullptr}));
    const std::vector<float> q(data.as<float>(), data.as<float>() + 4);

    QueryOptions with;
    with.top_k = 3;
    with.include_values = true;
    with.include_metadata = true;
    const auto hits = b->query(ds.name(), q, with);
    REQUIRE(hits.size() == 3);
    CHECK(hits[0].id == "a");
    CHECK(hits[0].index == 0);
    for (const auto& h : hits) {
      REQUIRE(h.values.has_value());
      const int64_t row = h.id == "a" ? 0 : h.id == "b" ? 1 : 2;
      CHECK(*h.values == std::vector<float>(data.as<float>() + row * 4, data.as<float>() + row * 4 + 4));
      if (h.id == "a") {
        CHECK(h.metadata == json{{"tag", "x"}, {"n", 1}});
      } else if (h.id == "b") {
        CHECK(h.metadata == json{{"tag", "y"}});
      } else {
        CHECK(is_empty_metadata(h.metadata));
      }
    }

    QueryOptions without;
    without.top_k = 3;
    without.include_values = false;
    without.include_metadata = false;
    for (const auto& h : b->query(ds.name(), q, without)) {
      CHECK_FALSE(h.values.has_value());
      CHECK(h.metadata.is_null());
    }
  }

  TEST_CASE("query with a vector of the wrong length is refused with UsageError") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    b->write_rows(ds.name(), make_batch({"a"}, sample_array(DType::f32, {1, 4}, 34)));
    CHECK_THROWS_AS(b->query(ds.name(), {1, 2, 3}, {}), UsageError);
  }
}
