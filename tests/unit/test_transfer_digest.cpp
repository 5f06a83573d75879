// SPDX-License-Identifier: MIT
// Row and dataset digests and canonical metadata (workflows/transfer/digest.hpp), and addresses
// (workflows/transfer/address.hpp).
#include <doctest/doctest.h>

#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/testutil.hpp"
#include "workflows/transfer/address.hpp"
#include "workflows/transfer/digest.hpp"

using namespace vstash;
using nlohmann::json;

namespace {

backends::RowBatch two_rows() {
  backends::RowBatch b;
  b.ids = {"a", "b"};
  b.indices = {0, 1};
  b.data = testutil::random_f32(2, 3, 11);
  b.labels = Array(DType::i64, {2});
  b.labels->as<int64_t>()[0] = 7;
  b.labels->as<int64_t>()[1] = 8;
  b.metadata = {json{{"k", 1}}, json(nullptr)};
  return b;
}

}  // namespace

TEST_SUITE("transfer::digest") {
  TEST_CASE("canonical metadata ignores key order and number spelling, not values") {
    CHECK(transfer::canonical_metadata(json::parse(R"({"b": 1, "a": {"y": 2.0, "x": [1.0, "s"]}})")) ==
          transfer::canonical_metadata(json::parse(R"({"a": {"x": [1, "s"], "y": 2}, "b": 1.0})")));
    CHECK(transfer::canonical_metadata(json(nullptr)) == transfer::canonical_metadata(json::object()));
    CHECK(transfer::canonical_metadata(json{{"f", 1.5}}) != transfer::canonical_metadata(json{{"f", 1.25}}));
    CHECK(transfer::canonical_metadata(json{{"f", 1}}) != transfer::canonical_metadata(json{{"f", "1"}}));
    // beyond 2^53 an integer is not rounded through a double
    CHECK(transfer::canonical_metadata(json{{"n", int64_t{9007199254740993}}}) == R"({"n":9007199254740993})");
  }

  TEST_CASE("a row's digest changes with its id, one sample bit, its label or its metadata") {
    const auto b = two_rows();
    const auto d = transfer::row_digest(b, 0);
    CHECK(d == transfer::row_digest(two_rows(), 0));
    CHECK_FALSE(d == transfer::row_digest(b, 1));
    auto c = two_rows();
    c.ids[0] = "a2";
    CHECK_FALSE(d == transfer::row_digest(c, 0));
    c = two_rows();
    c.data.data()[5] ^= std::byte{1};
    CHECK_FALSE(d == transfer::row_digest(c, 0));
    c = two_rows();
    c.labels->as<int64_t>()[0] = 9;
    CHECK_FALSE(d == transfer::row_digest(c, 0));
    c = two_rows();
    c.metadata[0] = json{{"k", 2}};
    CHECK_FALSE(d == transfer::row_digest(c, 0));
    c = two_rows();
    c.metadata[0] = json{{"k", 1.0}};  // the same value
    CHECK(d == transfer::row_digest(c, 0));
    CHECK(d.hex().size() == 32);
  }

  TEST_CASE("fields are length-prefixed, so moving bytes between them changes the digest") {
    transfer::Hasher x, y;
    x.field(std::string_view("ab"));
    x.field(std::string_view("c"));
    y.field(std::string_view("a"));
    y.field(std::string_view("bc"));
    CHECK_FALSE(x.finish() == y.finish());
  }

  TEST_CASE("a dataset's digest depends on the order of its rows") {
    const auto b = two_rows();
    transfer::DatasetDigest one, two;
    one.add(transfer::row_digest(b, 0));
    one.add(transfer::row_digest(b, 1));
    two.add(transfer::row_digest(b, 1));
    two.add(transfer::row_digest(b, 0));
    CHECK_FALSE(one.finish() == two.finish());
    CHECK(one.rows() == 2);
  }
}

TEST_SUITE("transfer::address") {
  TEST_CASE("PROFILE:DATASET, DATASET and :DATASET") {
    auto a = transfer::parse_address("pg:mnist", "SRC");
    CHECK(a.profile == "pg");
    CHECK(a.dataset == "mnist");
    a = transfer::parse_address("mnist", "SRC");
    CHECK_FALSE(a.profile);
    CHECK(a.dataset == "mnist");
    a = transfer::parse_address(":run:2", "SRC");
    CHECK_FALSE(a.profile);
    CHECK(a.dataset == "run:2");
    a = transfer::parse_address("pg:a:b", "SRC");
    CHECK(a.dataset == "a:b");
  }

  TEST_CASE("two profile names for one store are the same store") {
    const Profile a{"a", "local", {{"path", "/tmp/x/../y.db"}}, "t"};
    const Profile b{"b", "local", {{"path", "/tmp/y.db"}}, "t"};
    const Profile c{"c", "local", {{"path", "/tmp/z.db"}}, "t"};
    CHECK(transfer::same_store(a, b));
    CHECK_FALSE(transfer::same_store(a, c));
    const Profile r1{"r1", "redis", {{"host", "h"}, {"port", 1}, {"prefix", "p:"}, {"ttl", 5}}, "t"};
    const Profile r2{"r2", "redis", {{"host", "h"}, {"port", 1}, {"prefix", "p:"}}, "t"};
    const Profile r3{"r3", "redis", {{"host", "h"}, {"port", 1}, {"prefix", "q:"}}, "t"};
    CHECK(transfer::same_store(r1, r2));
    CHECK_FALSE(transfer::same_store(r1, r3));
    // The registry's location keys decide (backends/registry.cpp): another Redis db is another store.
    const Profile r4{"r4", "redis", {{"host", "h"}, {"port", 1}, {"prefix", "p:"}, {"db", 2}}, "t"};
    CHECK_FALSE(transfer::same_store(r2, r4));
    const Profile p1{"p1", "pinecone", {{"index_name", "i"}, {"namespace_prefix", "a"}}, "t"};
    const Profile p2{"p2", "pinecone", {{"index_name", "i"}, {"namespace_prefix", "b"}}, "t"};
    CHECK_FALSE(transfer::same_store(p1, p2));
  }

  TEST_CASE("a malformed address is a usage error naming it") {
    for (const char* bad : {"pg:", ":", "", "my profile:x", "pg:a\tb"}) {
      CAPTURE(bad);
      try {
        transfer::parse_address(bad, "DST");
        FAIL("accepted");
      } catch (const UsageError& e) {
        CHECK(std::string(e.what()).find("DST \"") == 0);
      }
    }
  }
}
