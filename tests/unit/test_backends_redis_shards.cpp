// SPDX-License-Identifier: MIT
// One Redis dataset spread over shards (backends/redis/redisshards.cpp): chunk key names per
// shard and version, the version map's bytes and the profile key. A reader between a sharded
// write's two steps is tested in test_backends_redis_reads.cpp.
#include <doctest/doctest.h>
#include <set>
#include <string>
#include <vector>

#include "backends/redis/redisclusterslots.hpp"
#include "backends/redis/redisrows.hpp"
#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"

namespace rd = vstash::backends::redis;
using nlohmann::json;

TEST_CASE("shards: chunk N lives in shard N mod S at its version; the manifest's slot and S = 1 keys are as before") {
  rd::StoreConfig cfg;
  cfg.prefix = "P:";
  rd::DatasetKeys one(cfg, "a:b");
  CHECK(one.manifest() == std::string("P:ds:{a%3Ab}:manifest"));
  CHECK(one.rows("I", 7) == std::string("P:ds:{a%3Ab}:I:rows:7"));
  CHECK(one.chunk("I", 7) == std::string("P:ds:{a%3Ab}:I:chunk:7"));
  rd::DatasetKeys k(cfg, "a:b");
  k.shards = 3;
  k.versions = {5, 6, 7, 8};
  CHECK(k.manifest() == std::string("P:ds:{a%3Ab}:manifest"));
  CHECK(k.ids("I") == std::string("P:ds:{a%3Ab}:I:ids"));
  CHECK(k.vers("I") == std::string("P:ds:{a%3Ab}:I:vers"));
  CHECK(k.rows("I", 3) == std::string("P:ds:{a%3Ab/0}:I:rows:3:v8"));
  CHECK(k.chunk("I", 1) == std::string("P:ds:{a%3Ab/1}:I:chunk:1:v6"));
  CHECK(k.labels("I", 2) == std::string("P:ds:{a%3Ab/2}:I:labels:2:v7"));
  CHECK(k.key_at("rows", "I", 4, 9) == std::string("P:ds:{a%3Ab/1}:I:rows:4:v9"));
  CHECK(k.rows("I", 9) == std::string("P:ds:{a%3Ab/0}:I:rows:9:v0"));  // past the map: never written
  std::set<int> slots;
  for (int64_t c = 0; c < 3; ++c) {
    slots.insert(rd::key_slot(k.rows("I", c)));
    CHECK(rd::key_slot(k.rows("I", c)) == rd::key_slot(k.chunk("I", c + 3)));  // one shard, one slot
  }
  CHECK(slots.size() == 3);
  CHECK(slots.count(rd::key_slot(k.manifest())) == 0);
  CHECK(rd::key_slot(k.vers("I")) == rd::key_slot(k.manifest()));
}

TEST_CASE("shards: the version map is a u32 LE per chunk; a short map reads as version 0") {
  const std::string bytes = rd::encode_versions({1, 0x01020304, 0xffffffffU});
  CHECK(bytes == std::string("\x01\0\0\0\x04\x03\x02\x01\xff\xff\xff\xff", 12));
  CHECK(rd::decode_versions(bytes, 3) == std::vector<uint32_t>{1, 0x01020304, 0xffffffffU});
  CHECK(rd::decode_versions(bytes, 5) == std::vector<uint32_t>{1, 0x01020304, 0xffffffffU, 0, 0});
  CHECK(rd::decode_versions(bytes.substr(0, 6), 2) == std::vector<uint32_t>{1, 0});
  CHECK(rd::decode_versions("", 0).empty());
}

TEST_CASE("shards: shards_per_dataset outside 1..256 is a one-line profile error") {
  for (const json& bad : {json(0), json(257), json(-1), json("many")}) {
    CAPTURE(bad.dump());
    const vstash::Profile p("r", "redis", json{{"host", "127.0.0.1"}, {"port", 1}, {"shards_per_dataset", bad}},
                            "test.yaml");
    CHECK_THROWS_WITH_AS(vstash::backends::create_backend(p, nullptr), doctest::Contains("shards_per_dataset"),
                         vstash::UsageError);
  }
}
