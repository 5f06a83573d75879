// SPDX-License-Identifier: MIT
// Redis Cluster routing (backends/redis/redisclusterslots.hpp, rediscluster.hpp): hash slots,
// key positions, a recorded CLUSTER SLOTS reply and redirections without a server; then, in the
// suite "redis_cluster", against the real cluster of tests/servers/redis_cluster.sh named by
// $VSTASH_REDIS_CLUSTER_TEST_CONFIG (skipped, never passed, in the plain unit run): a pipeline
// over the three masters, a cross-slot transaction, and -ASK / -MOVED after moving one slot.
#include <doctest/doctest.h>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#pragma GCC diagnostic pop

#include "backends/common/catalog.hpp"
#include "backends/common/contention.hpp"
#include "backends/redis/rediscache.hpp"
#include "backends/redis/rediscluster.hpp"
#include "backends/redis/redisclusterslots.hpp"
#include "backends/redis/redisconnection.hpp"
#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/testutil.hpp"

namespace rd = vstash::backends::redis;
using vstash::Profile;

namespace {

// A reply parsed by hiredis's own reader from recorded RESP bytes.
rd::Reply parse_resp(const std::string& bytes) {
  redisReader* reader = redisReaderCreate();
  REQUIRE(redisReaderFeed(reader, bytes.data(), bytes.size()) == REDIS_OK);
  void* out = nullptr;
  REQUIRE(redisReaderGetReply(reader, &out) == REDIS_OK);
  redisReaderFree(reader);
  REQUIRE(out != nullptr);
  return rd::Reply(static_cast<redisReply*>(out));
}

// Recorded from redis-server 7.0.15 (tests/servers/redis_cluster.sh), with one replica added
// to the first range as the Redis documentation shows it.
const std::string k_cluster_slots =
    "*3\r\n"
    "*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:57001\r\n$40\r\n5cfdfda78f54373be3f6911fabdafd75a3e28fc8\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:57005\r\n$40\r\n1111111111111111111111111111111111111111\r\n*0\r\n"
    "*3\r\n:5461\r\n:10922\r\n*4\r\n$0\r\n\r\n:57002\r\n$40\r\n1f8a0fc7574aa677cb13225276582027f88a3016\r\n*0\r\n"
    "*3\r\n:10923\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:57003\r\n$40\r\n92137191fb891428aa984e714fce842a7ad6b525\r\n*"
    "0\r\n";

}  // namespace

TEST_CASE("cluster: key slots follow the Redis Cluster spec, hash tags included") {
  CHECK(rd::crc16_xmodem("123456789") == 0x31C3);
  CHECK(rd::key_slot("123456789") == 12739);
  CHECK(rd::key_slot("{user1000}.following") == rd::key_slot("{user1000}.followers"));
  CHECK(rd::key_slot("{user1000}.following") == rd::key_slot("user1000"));
  CHECK(rd::key_slot("foo{}{bar}") == (rd::crc16_xmodem("foo{}{bar}") & 16383));
  CHECK(rd::key_slot("foo{{bar}}zap") == rd::key_slot("{bar"));
  CHECK(rd::key_slot("foo{bar}{zap}") == rd::key_slot("bar"));
  CHECK(rd::key_slot("{") == (rd::crc16_xmodem("{") & 16383));
  CHECK(rd::key_slot("") == 0);
  // A dataset's keys share its tag (backends/redis/redissnapshot.cpp): one slot per dataset.
  CHECK(rd::key_slot("vstash:ds:{train}:manifest") == rd::key_slot("vstash:ds:{train}:7:rows:3"));
}

TEST_CASE("cluster: the key of each command the backend sends") {
  auto pos = [](std::vector<std::string> args) { return rd::key_position(args); };
  CHECK(pos({"GET", "k"}) == 1u);
  CHECK(pos({"hset", "k", "f", "v"}) == 1u);
  CHECK(pos({"UNLINK", "a", "b"}) == 1u);
  CHECK(pos({"WATCH", "k"}) == 1u);
  CHECK(pos({"EVAL", "return 1", "2", "k1", "k2", "arg"}) == 3u);
  CHECK(pos({"EVALSHA", "abc", "1", "k1"}) == 3u);
  CHECK_FALSE(pos({"EVAL", "return 1", "0", "arg"}));
  CHECK(pos({"MEMORY", "USAGE", "k"}) == 2u);
  for (const char* keyless : {"PING", "INFO", "SCAN", "MULTI", "EXEC", "UNWATCH", "SCRIPT", "CLUSTER", "ASKING"}) {
    CHECK_FALSE(pos({keyless, "x"}));
  }
  CHECK_FALSE(pos({"GET"}));
}

TEST_CASE("cluster: a recorded CLUSTER SLOTS reply becomes the slot map") {
  const rd::Reply reply = parse_resp(k_cluster_slots);
  const auto ranges = rd::parse_cluster_slots(*reply, "10.0.0.9");
  REQUIRE(ranges.size() == 3);
  CHECK(ranges[0].first == 0);
  CHECK(ranges[0].last == 5460);
  CHECK(ranges[0].endpoint == "127.0.0.1:57001");
  CHECK(ranges[1].endpoint == "10.0.0.9:57002");  // an empty host is the node asked
  CHECK(ranges[2].first == 10923);
  rd::SlotMap map;
  CHECK(map.master(0).empty());
  CHECK_FALSE(map.complete());
  map.assign(ranges);
  CHECK(map.complete());
  CHECK(map.master(12739) == "127.0.0.1:57003");
  CHECK(map.master(5461) == "10.0.0.9:57002");
  CHECK(map.endpoints().size() == 3);
  map.move(12739, "127.0.0.1:57001");
  CHECK(map.master(12739) == "127.0.0.1:57001");
  CHECK(map.master(12740) == "127.0.0.1:57003");

  // Malformed replies are one-line errors, never a crash.
  for (const std::string& bad : {std::string(":1\r\n"), std::string("*1\r\n*2\r\n:0\r\n:1\r\n"),
                                 std::string("*1\r\n*3\r\n:0\r\n:99999\r\n*2\r\n$1\r\nh\r\n:1\r\n"),
                                 std::string("*1\r\n*3\r\n:9\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n"),
                                 std::string("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n")}) {
    const rd::Reply r = parse_resp(bad);
    CHECK_THROWS_AS(rd::parse_cluster_slots(*r, "h"), vstash::Error);
  }
}

TEST_CASE("cluster: -MOVED and -ASK redirections") {
  const auto moved = rd::parse_redirect("MOVED 3999 127.0.0.1:6381");
  REQUIRE(moved);
  CHECK_FALSE(moved->ask);
  CHECK(moved->slot == 3999);
  CHECK(moved->endpoint == "127.0.0.1:6381");
  const auto ask = rd::parse_redirect("ASK 16383 ::1:7000");
  REQUIRE(ask);
  CHECK(ask->ask);
  CHECK(ask->slot == 16383);
  CHECK(rd::split_endpoint(ask->endpoint)->first == "::1");
  CHECK(rd::split_endpoint(ask->endpoint)->second == 7000);
  for (const char* bad :
       {"MOVED", "MOVED 16384 h:1", "MOVED x h:1", "MOVED 1 h", "MOVED 1 h:0", "ERR MOVED 1 h:1", "ASK 1 :1"}) {
    CHECK_FALSE(rd::parse_redirect(bad));
  }
}

TEST_CASE("cluster: profile keys cluster and nodes") {
  auto load = [](const std::string& body) {
    return vstash::parse_profile_text("profiles:\n  c:\n    type: redis\n" + body, "t.yaml").profiles.at("c");
  };
  const auto o = rd::ConnectOptions::from_profile(load("    cluster: true\n    nodes: [\"h1:7000\", h2:7001]\n"));
  CHECK(o.cluster == rd::ClusterMode::cluster);
  CHECK(o.nodes == std::vector<std::string>{"h1:7000", "h2:7001"});
  CHECK(o.location() == "h1:7000,h2:7001/0");
  CHECK(rd::ConnectOptions::from_profile(load("    nodes: h1:7000\n")).cluster == rd::ClusterMode::cluster);
  CHECK(rd::ConnectOptions::from_profile(load("    host: h\n")).cluster == rd::ClusterMode::detect);
  CHECK_THROWS_WITH_AS(rd::ConnectOptions::from_profile(load("    nodes: [h1]\n")),
                       doctest::Contains("nodes: \"h1\" is not host:port"), vstash::UsageError);
  CHECK_THROWS_WITH_AS(rd::ConnectOptions::from_profile(load("    cluster: false\n    nodes: [h:1]\n")),
                       doctest::Contains("nodes needs cluster: true"), vstash::UsageError);
  CHECK_THROWS_AS(rd::ConnectOptions::from_profile(load("    cluster: true\n    db: 2\n")), vstash::UsageError);
  CHECK_THROWS_AS(load("    nodes: [[h, 1]]\n"), vstash::UsageError);
  CHECK_THROWS_AS(load("    port: [1, 2]\n"), vstash::UsageError);
  // The cache tier counts hits in one prefix-wide hash and SCANs its keys: one server only.
  CHECK_THROWS_WITH_AS(rd::Cache(load("    nodes: [h1:7000]\n"), 0),
                       doctest::Contains("profile \"c\": the cache tier needs a single redis-server"),
                       vstash::UsageError);
}

namespace {

bool no_cluster() {
  const char* c = std::getenv("VSTASH_REDIS_CLUSTER_TEST_CONFIG");
  return c == nullptr || *c == '\0';
}

const Profile& cluster_profile(const std::string& name = "redis_cluster") {
  static const vstash::ProfileFile file = vstash::load_profile_file(std::getenv("VSTASH_REDIS_CLUSTER_TEST_CONFIG"));
  return file.profiles.at(name);
}

rd::Connection cluster() { return rd::Connection(rd::ConnectOptions::from_profile(cluster_profile())); }

// A plain connection to one node, never routed.
rd::Connection node(const std::string& endpoint) {
  rd::ConnectOptions o = rd::ConnectOptions::from_profile(cluster_profile());
  o.cluster = rd::ClusterMode::single;
  o.nodes.clear();
  o.host = rd::split_endpoint(endpoint)->first;
  o.port = rd::split_endpoint(endpoint)->second;
  return rd::Connection(o);
}

rd::SlotMap slot_map() {
  rd::Connection c = node(rd::ConnectOptions::from_profile(cluster_profile()).nodes.at(0));
  rd::SlotMap map;
  map.assign(rd::parse_cluster_slots(*c.command({"CLUSTER", "SLOTS"}), "127.0.0.1"));
  return map;
}

// Moves every key of `slot` from its master to `to`, the way redis-cli --cluster reshard does;
// `settle` false stops after the keys moved (the slot still MIGRATING: its keys answer -ASK).
void move_slot(int slot, const std::string& from, const std::string& to, bool settle) {
  rd::Connection src = node(from);
  rd::Connection dst = node(to);
  const std::string s = std::to_string(slot);
  const std::string src_id = rd::as_string(*src.command({"CLUSTER", "MYID"}));
  const std::string dst_id = rd::as_string(*dst.command({"CLUSTER", "MYID"}));
  if (!settle) {
    dst.command({"CLUSTER", "SETSLOT", s, "IMPORTING", src_id});
    src.command({"CLUSTER", "SETSLOT", s, "MIGRATING", dst_id});
    const auto keys = rd::string_array(*src.command({"CLUSTER", "GETKEYSINSLOT", s, "1000"}));
    const auto hp = rd::split_endpoint(to);
    const std::string password = cluster_profile().get_string("password", "");
    for (const auto& k : keys) {
      src.command({"MIGRATE", hp->first, std::to_string(hp->second), k, "0", "5000", "AUTH", password});
    }
    return;
  }
  const rd::SlotMap map = slot_map();
  for (const auto& ep : map.endpoints()) {
    node(ep).command({"CLUSTER", "SETSLOT", s, "NODE", dst_id});
  }
}

}  // namespace

TEST_SUITE("redis_cluster" * doctest::skip(no_cluster())) {
  TEST_CASE("cluster: a pipeline over the three masters returns its replies in the caller's order") {
    rd::Connection c = cluster();
    REQUIRE(c.is_cluster());
    const rd::SlotMap map = slot_map();
    const std::string tag = vstash::testutil::unique_name("pipe");
    std::vector<std::string> keys;
    std::set<std::string> masters;
    for (int i = 0; keys.size() < 30; ++i) {
      keys.push_back(tag + ":" + std::to_string(i));
      masters.insert(map.master(rd::key_slot(keys.back())));
    }
    REQUIRE(masters.size() == 3);
    for (size_t i = 0; i < keys.size(); ++i) {
      c.append({"SET", keys[i], "v" + std::to_string(i)});
      c.append({"GET", keys[i]});
    }
    const uint64_t before = c.round_trips();
    auto replies = c.flush();
    CHECK(c.round_trips() == before + 1);  // one fan-out, not one round trip per node
    REQUIRE(replies.size() == 2 * keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      CHECK(rd::as_string(*replies[2 * i]) == "OK");
      CHECK(rd::as_string(*replies[2 * i + 1]) == "v" + std::to_string(i));
    }
    c.append({"PING"});
    c.append({"UNLINK", keys[0]});
    replies = c.flush();
    CHECK(rd::as_string(*replies[0]) == "PONG");
    CHECK(rd::as_int(*replies[1]) == 1);
  }

  TEST_CASE("cluster: a transaction keeps its slot; another slot's index commands follow a committed EXEC") {
    rd::Connection c = cluster();
    const std::string tag = vstash::testutil::unique_name("tx");
    const std::string hash = "{" + tag + "}:h";
    const std::string index = tag + ":index";
    REQUIRE(rd::key_slot(hash) != rd::key_slot(index));
    c.append({"WATCH", hash});
    c.append({"EXISTS", hash});
    CHECK(rd::as_int(*c.flush().back()) == 0);
    c.append({"MULTI"});
    c.append({"HSET", hash, "f", "1"});
    c.append({"SADD", index, "a"});
    c.append({"HINCRBY", hash, "n", "5"});
    c.append({"EXEC"});
    auto replies = c.flush();
    REQUIRE(replies.size() == 5);
    CHECK(rd::as_string(*replies[2]) == "QUEUED");
    const redisReply& exec = *replies[4];
    REQUIRE(rd::array_size(exec) == 3);
    CHECK(rd::as_int(rd::element(exec, 0)) == 1);
    CHECK(rd::as_int(rd::element(exec, 1)) == 1);
    CHECK(rd::as_int(rd::element(exec, 2)) == 5);
    CHECK(rd::string_array(*c.command({"SMEMBERS", index})) == std::vector<std::string>{"a"});

    // A watched key changed by another client: EXEC aborts and the other slot's command is not sent.
    c.append({"WATCH", hash});
    c.append({"EXISTS", hash});
    c.flush();
    cluster().command({"HSET", hash, "f", "2"});
    c.append({"MULTI"});
    c.append({"SADD", index, "b"});
    c.append({"HSET", hash, "f", "3"});
    c.append({"EXEC"});
    replies = c.flush();
    CHECK(rd::is_nil(*replies.back()));
    CHECK(rd::string_array(*c.command({"SMEMBERS", index})) == std::vector<std::string>{"a"});
    CHECK(rd::as_string(*c.command({"HGET", hash, "f"})) == "2");
    c.append({"UNLINK", hash});
    c.append({"UNLINK", index});
    c.flush();
  }

  TEST_CASE("cluster: a dataset's chunks are spread over the three masters, and drop removes every shard key") {
    Profile p = cluster_profile();
    const std::string prefix = vstash::testutil::unique_name("spread") + ":";
    p.set("prefix", prefix);
    auto store = vstash::backends::create_backend(p, nullptr);
    vstash::backends::DatasetSpec spec;
    spec.name = "d";
    spec.dtype = vstash::DType::f32;
    spec.row_shape = {2};
    store->create_dataset(spec);
    vstash::backends::RowBatch rows;
    const int64_t n = 256 * 6;  // 6 chunks: two per shard
    rows.data = vstash::Array(vstash::DType::f32, {n, 2});
    for (int64_t i = 0; i < n; ++i) {
      rows.ids.push_back("r" + std::to_string(i));
      rows.data.as<float>()[2 * i] = static_cast<float>(i);
    }
    store->write_rows("d", rows);
    CHECK(store->dataset_info("d")->extra.at("shards") == 3);  // the masters, by default
    auto keys_by_master = [&] {
      std::map<std::string, std::vector<std::string>> out;
      for (const auto& master : {slot_map().master(0), slot_map().master(8000), slot_map().master(16383)}) {
        auto r = node(master).command({"KEYS", prefix + "*"});
        out[master] = rd::string_array(*r);
      }
      return out;
    };
    std::set<int> chunk_slots;
    for (const auto& [master, keys] : keys_by_master()) {
      CAPTURE(master);
      size_t chunks = 0;
      for (const auto& k : keys) {
        if (k.find(":chunk:") != std::string::npos) {
          ++chunks;
          chunk_slots.insert(rd::key_slot(k));
        }
      }
      CHECK(chunks == 2);
    }
    CHECK(chunk_slots.size() == 3);
    const auto back = store->read_rows("d", 0, n);
    CHECK(back.ids == rows.ids);
    CHECK(std::memcmp(back.data.data(), rows.data.data(), rows.data.nbytes()) == 0);
    CHECK(store->drop_dataset("d"));
    for (const auto& [master, keys] : keys_by_master()) {
      CHECK(keys.empty());
    }
  }

  TEST_CASE("cluster: -ASK during a slot migration and -MOVED after it are followed") {
    rd::Connection c = cluster();
    const std::string key = vstash::testutil::unique_name("moved");
    const int slot = rd::key_slot(key);
    c.command({"SET", key, "before"});
    const rd::SlotMap map = slot_map();
    const std::string from = map.master(slot);
    std::string to;
    for (const auto& ep : map.endpoints()) {
      to = ep != from ? ep : to;
    }
    move_slot(slot, from, to, /*settle=*/false);
    CHECK(rd::as_string(*c.command({"GET", key})) == "before");  // -ASK, then ASKING + GET on `to`
    move_slot(slot, from, to, /*settle=*/true);
    const uint64_t before = c.round_trips();
    CHECK(rd::as_string(*c.command({"GET", key})) == "before");  // -MOVED, refresh, resend
    CHECK(c.round_trips() == before + 2);
    c.command({"SET", key, "after"});
    CHECK(c.round_trips() == before + 3);  // the map is current now
    CHECK(rd::as_string(*node(to).command({"GET", key})) == "after");
    // Put the slot back, so the other tests see the cluster as redis-cli created it.
    move_slot(slot, to, from, false);
    move_slot(slot, to, from, true);
    CHECK(rd::as_string(*c.command({"GET", key})) == "after");
    c.command({"UNLINK", key});
  }

  TEST_CASE("cluster: a plain host/port that answers as a cluster node is routed as a cluster") {
    rd::Connection c(rd::ConnectOptions::from_profile(cluster_profile("redis_cluster_node")));
    CHECK(c.is_cluster());
    const std::string tag = vstash::testutil::unique_name("detect");
    for (int i = 0; i < 12; ++i) {
      c.append({"SET", tag + std::to_string(i), std::to_string(i)});
    }
    c.flush();
    for (int i = 0; i < 12; ++i) {
      c.append({"GET", tag + std::to_string(i)});
    }
    auto replies = c.flush();
    for (int i = 0; i < 12; ++i) {
      CHECK(rd::as_string(*replies[static_cast<size_t>(i)]) == std::to_string(i));
      c.append({"UNLINK", tag + std::to_string(i)});
    }
    c.flush();
  }

  TEST_CASE("cluster: a cache on a plain host/port of a cluster node reads from the primary") {
    // Its lookup would touch two slots (CROSSSLOT); it must be refused on connect, not mistaken
    // for an unreachable server on every call.
    rd::Cache cache(cluster_profile("redis_cluster_node"), 0);
    CHECK_FALSE(cache.lookup("scope", "key").has_value());
    CHECK(cache.round_trips() == 0);
  }
}

namespace {

// A record store that always loses its compare-and-set, as if other writers kept changing it.
class AlwaysLosing final : public vstash::backends::catalog::DatasetRecords {
 public:
  std::string location() const override { return "fake"; }
  std::optional<vstash::backends::catalog::DatasetRecord> get(const std::string& name) override {
    vstash::backends::catalog::DatasetRecord r;
    r.spec.name = name;
    r.spec.row_shape = {4};
    return r;
  }
  std::vector<vstash::backends::catalog::DatasetRecord> list() override { return {}; }
  bool insert(const vstash::backends::catalog::DatasetRecord&) override { return false; }
  bool compare_and_set(const vstash::backends::catalog::DatasetRecord&,
                       const vstash::backends::catalog::DatasetRecord&) override {
    ++attempts;
    return false;
  }
  bool remove(const std::string&) override { return false; }
  int attempts = 0;
};

}  // namespace

TEST_CASE("contention: the catalog gives up after the one limit that Redis writes use too") {
  // backends/common/contention.hpp holds the limit of both: the catalog's compare-and-set had
  // its own (64), Redis's WATCH/MULTI another (200, deletes 10).
  AlwaysLosing records;
  vstash::backends::DatasetSpec spec;
  spec.name = std::string("d");
  spec.row_shape = {4};
  spec.metadata = {{"k", 1}};
  vstash::backends::catalog::Catalog catalog(records);
  CHECK_THROWS_WITH_AS(catalog.create(spec),
                       "fake: dataset \"d\": gave up after 200 attempts: concurrent writers keep changing it",
                       vstash::ConflictError);
  CHECK(records.attempts == vstash::backends::k_contention_attempts);
  CHECK(vstash::backends::k_contention_attempts == 200);
}
