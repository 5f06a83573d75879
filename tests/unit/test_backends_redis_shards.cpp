// SPDX-License-Identifier: MIT
// One Redis dataset spread over shards (backends/redis/redisshards.cpp): chunk key names per
// shard and version, the version map's bytes, the profile key, and, on the real test server,
// a reader between a sharded write's two steps (new versions written, commit not yet sent)
// that sees the old rows whole, then the new ones, with no superseded version left behind.
#include <doctest/doctest.h>
#include <set>
#include <string>
#include <vector>

#include "backends/redis/redisclusterslots.hpp"
#include "backends/redis/redisconnection.hpp"
#include "backends/redis/redisrows.hpp"
#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/unit/redistestserver.hpp"

using namespace vstash;
using backends::DatasetSpec;
using backends::RowBatch;
using json = nlohmann::json;
namespace rd = vstash::backends::redis;

namespace {

constexpr int64_t k_dim = 4;

DatasetSpec spec(const std::string& name) {
  DatasetSpec s;
  s.name = name;
  s.dtype = DType::f32;
  s.row_shape = {k_dim};
  s.label_dtype = DType::i64;
  s.label_shape = {};
  return s;
}

// Rows 0..n-1 of version v: id "rK", vector (K, v, K, v), label v, metadata {"v": v}.
RowBatch rows_of(int64_t n, int64_t v) {
  RowBatch b;
  b.data = Array(DType::f32, {n, k_dim});
  b.labels = Array(DType::i64, {n});
  for (int64_t k = 0; k < n; ++k) {
    b.ids.push_back("r" + std::to_string(k));
    for (int64_t d = 0; d < k_dim; ++d) {
      b.data.as<float>()[k * k_dim + d] = static_cast<float>(d % 2 == 0 ? k : v);
    }
    b.labels->as<int64_t>()[k] = v;
    b.metadata.push_back(json{{"v", v}});
  }
  return b;
}

// Every row of b is row K of version v (b holds rows 0..n-1 in order).
void check_version(const RowBatch& b, int64_t n, int64_t v) {
  REQUIRE(static_cast<int64_t>(b.size()) == n);
  for (int64_t k = 0; k < n; ++k) {
    INFO("row " << k);
    REQUIRE(b.ids[static_cast<size_t>(k)] == "r" + std::to_string(k));
    REQUIRE(b.labels->as<int64_t>()[k] == v);
    REQUIRE(b.metadata[static_cast<size_t>(k)] == json{{"v", v}});
    for (int64_t d = 0; d < k_dim; ++d) {
      REQUIRE(b.data.as<float>()[k * k_dim + d] == static_cast<float>(d % 2 == 0 ? k : v));
    }
  }
}

std::set<std::string> keys_under(const Profile& p) {
  rd::Connection c(rd::ConnectOptions::from_profile(p));
  std::set<std::string> out;
  std::string cursor = "0";
  const std::string pattern = p.get_string("prefix") + "*";
  do {
    auto r = c.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    cursor = rd::as_string(rd::element(*r, 0));
    for (const auto& k : rd::string_array(rd::element(*r, 1))) {
      out.insert(k);
    }
  } while (cursor != "0");
  return out;
}

}  // namespace

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
    const Profile p("r", "redis", json{{"host", "127.0.0.1"}, {"port", 1}, {"shards_per_dataset", bad}}, "test.yaml");
    CHECK_THROWS_WITH_AS(backends::create_backend(p, nullptr), doctest::Contains("shards_per_dataset"), UsageError);
  }
}

TEST_SUITE("redis" * doctest::skip(redistest::no_server())) {
  TEST_CASE("shards: a reader between a sharded write's new versions and its commit sees the old rows whole") {
    Profile p = redistest::isolated("redis", "shards");
    p.set("shards_per_dataset", 4);
    auto writer = backends::create_backend(p, &redistest::config());
    auto reader = backends::create_backend(p, &redistest::config());
    const int64_t n = 1500;  // 6 chunks over 4 shards, the last partial
    writer->create_dataset(spec("d"));
    writer->write_rows("d", rows_of(n, 0));
    REQUIRE(writer->dataset_info("d")->extra.at("shards") == 4);
    reader->fetch("d", {"r0"});  // the first lookup indexes the ids (a mutation: not from inside the hook)
    const auto before = keys_under(p);
    int calls = 0;
    int64_t rows = n;  // what a reader must see in the hook: the last commit's rows, whole
    int64_t version = 0;
    rd::before_commit_hook() = [&] {
      ++calls;
      check_version(reader->read_rows("d", 0, rows), rows, version);  // the batch path (head + fan-out)
      std::vector<std::string> ids;
      for (int64_t k = 0; k < rows; k += 97) {
        ids.push_back("r" + std::to_string(k));
      }
      for (const auto& meta : reader->fetch("d", ids).metadata) {
        CHECK(meta == json{{"v", version}});  // the snapshot path
      }
      CHECK(reader->count("d", nullptr) == rows);
    };
    struct Reset {
      ~Reset() { rd::before_commit_hook() = nullptr; }
    } reset;
    writer->write_rows("d", rows_of(n, 1));  // every chunk rewritten: 6 new versions
    CHECK(calls == 1);
    version = 1;
    check_version(reader->read_rows("d", 0, n), n, 1);
    // Deleting a row and updating one copy their chunks' other parts into new versions too.
    writer->delete_ids("d", {"r1499"});
    rows = n - 1;
    writer->update_row("d", "r3", std::nullopt, json{{"v", 1}});
    CHECK(calls == 3);
    check_version(reader->read_rows("d", 0, n - 1), n - 1, 1);
    // Each commit unlinked the versions it superseded: as many keys as before, none of the
    // first write's version (1; the rows v1 are version 2, the delete 3, the update 4).
    const auto after = keys_under(p);
    CHECK(after.size() == before.size());
    for (const auto& key : after) {
      CHECK(key.substr(key.size() - 3) != ":v1");
    }
    CHECK(writer->drop_dataset("d"));
    CHECK(keys_under(p).size() <= 1);  // the datasets set, if anything
  }
}
