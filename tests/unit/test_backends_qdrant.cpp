// SPDX-License-Identifier: MIT
// Qdrant backend pieces that need no server: point ids, byte-bounded upsert bodies, filter
// translation. The behaviour against a server is in tests/integration/qdrant_test.py.
#ifdef VSTASH_HAVE_QDRANT
#include <doctest/doctest.h>

#include <random>

#include "backends/qdrant/qdrantfilter.hpp"
#include "backends/qdrant/qdrantpoints.hpp"
#include "src/errors.hpp"
#include "src/util/uuid.hpp"

using namespace vstash;
using namespace vstash::backends;
using namespace vstash::backends::qdrant;

namespace {

RowBatch f32_batch(std::vector<std::string> ids, size_t dim, float base) {
  RowBatch b;
  const auto n = static_cast<int64_t>(ids.size());
  b.ids = std::move(ids);
  b.data = Array(DType::f32, {n, static_cast<int64_t>(dim)});
  for (int64_t i = 0; i < n * static_cast<int64_t>(dim); ++i) {
    b.data.as<float>()[i] = base + 0.001f * static_cast<float>(i);
  }
  return b;
}

}  // namespace

TEST_SUITE("qdrant::points") {
  TEST_CASE("the id namespace is the documented uuid5(URL, \"vstash:qdrant:point-id\")") {
    CHECK(util::uuid_v5("6ba7b811-9dad-11d1-80b4-00c04fd430c8", "vstash:qdrant:point-id") == k_id_namespace);
  }

  TEST_CASE("canonical unsigned decimals stay numeric point ids") {
    CHECK(point_id("0") == json(0));
    CHECK(point_id("42") == json(42));
    CHECK(point_id("18446744073709551615") == json(uint64_t{18446744073709551615ULL}));
    CHECK(point_id("42").is_number_unsigned());
  }

  TEST_CASE("UUIDs in any form become the lower-case hyphenated UUID") {
    const std::string want = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
    for (const char* form : {"5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "5C56C793-69F3-4FBF-87E6-C4BF54C28C26",
                             "5c56c79369f34fbf87e6c4bf54c28c26", "{5c56c793-69f3-4fbf-87e6-c4bf54c28c26}",
                             "urn:uuid:5C56C793-69f3-4fbf-87e6-c4bf54c28c26"}) {
      CAPTURE(form);
      CHECK(point_id(form) == json(want));
    }
  }

  TEST_CASE("every other string becomes uuid5 under the fixed namespace (python uuid.uuid5 values)") {
    CHECK(point_id("doc-1") == json("2504602e-0943-5c10-a8fc-b31e2e50cb29"));
    // Not canonical decimals: a leading zero, a sign, or more than uint64 holds.
    CHECK(point_id("042") == json("604cd44b-29af-5f05-8c27-57d5467c6a11"));
    CHECK(point_id("-1").is_string());
    CHECK(point_id("18446744073709551616").is_string());
    CHECK(point_id("ünï") == json("d26646b7-b268-5c4c-8dba-8c5c10f1892b"));
    CHECK(point_id("doc-1") != point_id("doc-2"));
  }

  TEST_CASE("point keys match replies to requests whatever the UUID case") {
    CHECK(point_key(json("5C56C793-69F3-4FBF-87E6-C4BF54C28C26")) ==
          point_key(point_id("5c56c79369f34fbf87e6c4bf54c28c26")));
    CHECK(point_key(json(7)) == "7");
  }

  TEST_CASE("the original id is kept in the payload and the vector is exact") {
    DatasetSpec spec;
    spec.name = std::string(1, 'd');  // not = "d": g++ 12 -Wrestrict false positive
    spec.row_shape = {3};
    spec.metric = Metric::euclidean;
    auto b = f32_batch({"doc-1", "42"}, 3, 0.1f);
    const auto points = encode_points(spec, b, {0, 1});
    REQUIRE(points.size() == 2);
    const json p0 = json::parse(points[0]);
    CHECK(p0["id"] == "2504602e-0943-5c10-a8fc-b31e2e50cb29");
    CHECK(p0["payload"]["_id"] == "doc-1");
    CHECK(p0["payload"]["_idx"] == 0);
    CHECK(p0["vector"].get<std::vector<float>>() == std::vector<float>{0.1f, 0.101f, 0.102f});
    CHECK_FALSE(p0["payload"].contains("_data"));  // float32 + euclidean: the vector is exact
    const json p1 = json::parse(points[1]);
    CHECK(p1["id"] == 42);
    CHECK(p1["payload"]["_id"] == "42");
    std::vector<const json*> recs{&p0, &p1};
    const RowBatch back = decode_records(spec, recs, true);
    CHECK(back.ids == b.ids);
    CHECK(back.data == b.data);
  }

  TEST_CASE("cosine and non-float32 datasets carry the exact sample in the payload") {
    DatasetSpec spec;
    spec.row_shape = {3};
    spec.metric = Metric::cosine;
    CHECK(needs_data_blob(spec));
    spec.metric = Metric::dot;
    CHECK_FALSE(needs_data_blob(spec));
    spec.dtype = DType::f64;
    CHECK(needs_data_blob(spec));
  }

  TEST_CASE("upsert bodies never exceed the byte limit and keep every point once, in order") {
    std::mt19937 rng(7);
    std::vector<std::string> points;
    for (int i = 0; i < 500; ++i) {
      points.push_back(json{{"id", i}, {"pad", std::string(rng() % 3000, 'x')}}.dump());
    }
    for (const size_t limit : {size_t{4096}, size_t{10000}, size_t{65536}}) {
      CAPTURE(limit);
      const auto bodies = pack_points(points, 64, limit);
      std::vector<int> seen;
      for (const auto& body : bodies) {
        CHECK(body.size() <= limit);
        const json j = json::parse(body);
        CHECK(j["points"].size() <= 64);
        for (const auto& p : j["points"]) {
          seen.push_back(p["id"].get<int>());
        }
      }
      REQUIRE(seen.size() == points.size());
      for (int i = 0; i < 500; ++i) {
        CHECK(seen[static_cast<size_t>(i)] == i);
      }
    }
    CHECK_THROWS_AS(pack_points({std::string(5000, 'x')}, 10, 4096), UsageError);
  }
}

TEST_SUITE("qdrant::filter") {
  TEST_CASE("every operator becomes a server condition: match, range on _num, _keys for $exists") {
    const auto f = Filter::parse(
        R"({"genre": "drama", "year": {"$gte": 2019}, "tag": {"$in": ["a", "b"]}, "draft": {"$exists": false}})");
    const auto t = translate_filter(&f);
    CHECK(t.exact);
    const std::string text = t.filter.dump();
    CHECK(text.find(R"({"key":"metadata.genre","match":{"value":"drama"}})") != std::string::npos);
    CHECK(text.find(R"({"key":"_num.year","range":{"gte":2019.0}})") != std::string::npos);
    CHECK(text.find(R"({"key":"metadata.tag","match":{"any":["a","b"]}})") != std::string::npos);
    CHECK(text.find(R"({"must_not":[{"key":"_keys","match":{"value":"draft"}}]})") != std::string::npos);
    CHECK(text.find("has_id") == std::string::npos);
  }

  TEST_CASE("without the rows' filter aids, range and $exists are a post-filtered superset") {
    const auto f = Filter::parse(R"({"year": {"$gte": 2019}, "draft": {"$exists": false}})");
    const auto t = translate_filter(&f, false);
    CHECK_FALSE(t.exact);
    const std::string text = t.filter.dump();
    CHECK(text.find(R"({"key":"metadata.year","range":{"gte":2019.0}})") != std::string::npos);
    CHECK(text.find(R"({"is_empty":{"key":"metadata.draft"}})") != std::string::npos);
  }

  TEST_CASE("$ne is an exact must_not and numbers compare by range") {
    const auto f = Filter::parse(R"({"n": {"$ne": 1}})");
    const auto t = translate_filter(&f);
    CHECK(t.exact);
    CHECK(t.filter == json::parse(R"({"must_not":[{"key":"metadata.n","range":{"gte":1.0,"lte":1.0}}]})"));
  }

  TEST_CASE("keys that are not plain path segments are quoted; only '\"' and empty keys are not expressible") {
    CHECK(metadata_path("a.b") == R"(metadata."a.b")");
    CHECK(metadata_path("sp ace") == R"(metadata."sp ace")");
    CHECK(metadata_path("ok_key-1") == "metadata.ok_key-1");
    CHECK(metadata_path(R"(q"uote)").empty());
    CHECK(metadata_path("").empty());
    auto f = Filter::parse(R"({"a.b": 1, "c[]": {"$lt": 2}, "d.e": {"$exists": true}})");
    auto t = translate_filter(&f);
    CHECK(t.exact);
    CHECK(t.filter == json::parse(R"({"must":[{"key":"metadata.\"a.b\"","range":{"gte":1.0,"lte":1.0}},
                                              {"key":"_num.\"c[]\"","range":{"lt":2.0}},
                                              {"key":"_keys","match":{"value":"d.e"}}]})"));
    f = Filter::parse(R"({"q\"k": 1})");
    t = translate_filter(&f);
    CHECK_FALSE(t.exact);
    CHECK(t.filter.empty());
  }
}
#endif
