// SPDX-License-Identifier: MIT
// Qdrant's distributed-collection keys without a server: where consistency and ordering go
// (backends/qdrant/qdrantdistribution.hpp) and how a call of a dataset under a custom shard key
// is placed (backends/qdrant/qdrantshards.hpp). Against the double: tests/integration/qdrant_test.py.
#ifdef VSTASH_HAVE_QDRANT
#include <doctest/doctest.h>

#include "backends/qdrant/qdrantdistribution.hpp"
#include "backends/qdrant/qdrantshards.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"

using namespace vstash;
using namespace vstash::backends::qdrant;

TEST_SUITE("qdrant::distribution") {
  TEST_CASE("consistency goes on reads, ordering on point writes, nothing elsewhere") {
    Distribution d;
    d.consistency = "majority";
    d.ordering = "strong";
    CHECK(with_request_params(d, "POST", "/collections/c/points/scroll") ==
          "/collections/c/points/scroll?consistency=majority");
    CHECK(with_request_params(d, "POST", "/collections/c/points") == "/collections/c/points?consistency=majority");
    CHECK(with_request_params(d, "PUT", "/collections/c/points?wait=true") ==
          "/collections/c/points?wait=true&ordering=strong");
    CHECK(with_request_params(d, "POST", "/collections/c/points/delete?wait=true") ==
          "/collections/c/points/delete?wait=true&ordering=strong");
    // A collection named "points" is not a points operation; nor is the index or a GET.
    CHECK(with_request_params(d, "PUT", "/collections/points") == "/collections/points");
    CHECK(with_request_params(d, "PUT", "/collections/c/index?wait=true") == "/collections/c/index?wait=true");
    CHECK(with_request_params(d, "GET", "/collections/c") == "/collections/c");
    CHECK(with_request_params(Distribution{}, "POST", "/collections/c/points/count") == "/collections/c/points/count");
  }

  TEST_CASE("bad values are one-line usage errors naming the key") {
    const auto open = [](nlohmann::json values) {
      return distribution_from(Profile("q", "qdrant", std::move(values), "test.yaml"));
    };
    CHECK(open({{"consistency", "3"}}).consistency == "3");
    CHECK(open({{"replication_factor", 2}, {"write_consistency_factor", 2}}).write_consistency_factor == 2);
    CHECK_THROWS_WITH_AS(open({{"consistency", "0"}}), doctest::Contains("\"consistency\""), UsageError);
    CHECK_THROWS_WITH_AS(open({{"ordering", "Strong"}}), doctest::Contains("\"ordering\""), UsageError);
    CHECK_THROWS_WITH_AS(open({{"shard_number", 0}}), doctest::Contains("\"shard_number\""), UsageError);
    CHECK_THROWS_WITH_AS(open({{"write_consistency_factor", 2}}), doctest::Contains("\"write_consistency_factor\""),
                         UsageError);
    CHECK_THROWS_WITH_AS(open({{"shard_key", "name"}}), doctest::Contains("\"shard_key\""), UsageError);
    CHECK_THROWS_WITH_AS(open({{"shard_collection", "x"}}), doctest::Contains("\"shard_collection\""), UsageError);
  }

  TEST_CASE("a placed dataset's point calls go to the shared collection with its shard key") {
    ShardPlacement p("vstash-{dimension}-{metric}");
    CHECK(p.collection_for(768, "Cosine") == "vstash-768-cosine");
    p.remember("my set", "vstash-4-cosine");
    std::string path = "/collections/my%20set/points/scroll";
    std::string body = R"({"limit":10})";
    p.place(path, body);
    CHECK(path == "/collections/vstash-4-cosine/points/scroll");
    CHECK(body == R"({"shard_key":"my set","limit":10})");
    path = "/collections/my%20set/points/count?consistency=all";
    body = "{}";
    p.place(path, body);
    CHECK(path == "/collections/vstash-4-cosine/points/count?consistency=all");
    CHECK(body == R"({"shard_key":"my set"})");
    // Collection calls, other datasets and a dataset forgotten stay as they are.
    for (std::string other : {"/collections/my%20set", "/collections/other/points", "/collections/my%20set2/points"}) {
      std::string b = "{}";
      const std::string before = other;
      p.place(other, b);
      CHECK(other == before);
      CHECK(b == "{}");
    }
    p.forget("my set");
    path = "/collections/my%20set/points";
    p.place(path, body);
    CHECK(path == "/collections/my%20set/points");
  }
}
#endif
