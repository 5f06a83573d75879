// SPDX-License-Identifier: MIT
// Redis-specific behaviour against the real test server (tests/servers/redis.sh): TTL on every
// key, expiry never giving a partial read, hostile names, the cache tier, and error mapping.
// Runs only when $VSTASH_REDIS_TEST_CONFIG names the server's redis.yaml (the redis_unit
// CTest entry sets it); the plain `unit` run reports these cases as skipped, never passed.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#include "backends/redis/cachedbackend.hpp"
#include "backends/redis/redisconnection.hpp"
#include "backends/redis/redisrows.hpp"
#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/filter.hpp"
#include "src/profile.hpp"
#include "tests/testutil.hpp"
#include "tests/unit/redistestserver.hpp"

using namespace vstash;
using backends::Backend;
using backends::DatasetSpec;
using backends::RowBatch;
using json = nlohmann::json;
namespace rd = vstash::backends::redis;

namespace {

using redistest::config;
using redistest::isolated;
using redistest::no_server;

std::unique_ptr<Backend> open(const Profile& p) { return backends::create_backend(p, &config()); }

rd::Connection raw() {
  const Profile& p = config().profiles.at("redis");
  return rd::Connection(rd::ConnectOptions::from_profile(p));
}

std::vector<std::string> keys_under(rd::Connection& c, const std::string& prefix) {
  std::vector<std::string> out;
  std::string cursor = "0";
  do {
    auto page = c.command({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
    cursor = rd::as_string(rd::element(*page, 0));
    const auto& names = rd::element(*page, 1);
    for (size_t i = 0; i < rd::array_size(names); ++i) {
      out.push_back(rd::as_string(rd::element(names, i)));
    }
  } while (cursor != "0");
  return out;
}

// The key under prefix whose name ends in tail (":rows:2", ":ids"), or "" if none.
std::string key_ending(rd::Connection& c, const std::string& prefix, const std::string& tail) {
  for (const auto& k : keys_under(c, prefix)) {
    if (k.size() > tail.size() && k.compare(k.size() - tail.size(), tail.size(), tail) == 0) {
      return k;
    }
  }
  return {};
}

DatasetSpec labelled_spec(const std::string& name, int64_t dim) {
  DatasetSpec s;
  s.name = name;
  s.dtype = DType::f32;
  s.row_shape = {dim};
  s.label_dtype = DType::i64;
  s.label_shape = {};
  return s;
}

RowBatch rows(const std::vector<std::string>& ids, int64_t dim, uint32_t seed, bool labels) {
  RowBatch b;
  b.ids = ids;
  const auto n = static_cast<int64_t>(ids.size());
  b.data = testutil::random_f32(n, dim, seed);
  if (labels) {
    b.labels = Array(DType::i64, {n});
    for (int64_t i = 0; i < n; ++i) {
      b.labels->as<int64_t>()[i] = i * 3 + seed;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    b.metadata.push_back(json{{"i", i}, {"tag", i % 2 == 0 ? "even" : "odd"}});
  }
  return b;
}

std::vector<std::string> numbered(const std::string& prefix, int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(prefix + std::to_string(i));
  }
  return out;
}

backends::Checkpoint checkpoint(const std::string& model, int64_t epoch, float fill) {
  backends::Checkpoint c;
  c.model = model;
  c.epoch = epoch;
  Array a(DType::f32, {3, 2});
  for (int i = 0; i < 6; ++i) {
    a.as<float>()[i] = fill + static_cast<float>(i);
  }
  c.arrays.emplace("parameters", a);
  c.metrics["loss"] = 0.5;
  c.overwrite = true;  // these tests re-save epochs on purpose (the conflict rule is a contract case)
  return c;
}

std::vector<std::string> hit_ids(const std::vector<backends::QueryHit>& hits) {
  std::vector<std::string> out;
  for (const auto& h : hits) {
    out.push_back(h.id);
  }
  return out;
}

// A dataset with some keys gone is "expired or not found"; one whose manifest expired too
// "does not exist", as any missing dataset (backends/common/catalog.hpp).
bool mentions_expired(const std::exception& e) {
  const std::string message = e.what();
  return message.find("expired or not found") != std::string::npos ||
         message.find("\" does not exist") != std::string::npos;
}

// Runs f until it throws NotFoundError (expired or missing) or the deadline passes.
// Returns the number of successful calls seen before; fails if expiry never came.
template <class F>
void poll_until_expired(F f, std::chrono::milliseconds deadline) {
  const auto stop = std::chrono::steady_clock::now() + deadline;
  while (true) {
    try {
      f();
    } catch (const NotFoundError& e) {
      CHECK(mentions_expired(e));
      return;
    }
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < stop, "keys did not expire in time");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Collects what is written to stderr between construction and finish().
class StderrCapture {
 public:
  StderrCapture() : m_path(testutil::scratch_dir("stderr") / "err.txt") {
    std::fflush(stderr);
    m_saved = ::dup(2);
    const int fd = ::open(m_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  std::string finish() {
    restore();
    std::ifstream in(m_path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  void restore() {
    if (m_saved >= 0) {
      std::fflush(stderr);
      ::dup2(m_saved, 2);
      ::close(m_saved);
      m_saved = -1;
    }
  }
  std::filesystem::path m_path;
  int m_saved = -1;
};

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

// A loopback port that accepts TCP connections (the kernel completes the handshake) but whose
// owner never reads or answers: a "slow" server.
class SilentListener {
 public:
  SilentListener() {
    m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(m_fd, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&a), &len);
    m_port = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(m_fd); }
  int port() const { return m_port; }

 private:
  int m_fd = -1;
  int m_port = 0;
};

}  // namespace

TEST_CASE("a chunk's records survive encoding, and a damaged value is an error, not a misread") {
  const std::string bin("\0\xff\r\n", 4);
  const rd::ChunkRecords records = {{0, rd::encode_record("a", json())},
                                    {7, rd::encode_record(bin, json{{"k", bin}})},
                                    {255, rd::encode_record("last", json{{"n", 1}})}};
  const std::string value = rd::encode_chunk_records(records);
  CHECK(rd::decode_chunk_records(value) == records);
  CHECK(rd::decode_record(rd::decode_chunk_records(value).at(7)).second == json{{"k", bin}});
  CHECK(rd::decode_chunk_records(rd::encode_chunk_records(rd::ChunkRecords())).empty());
  CHECK_THROWS_AS(rd::decode_chunk_records(""), Error);
  CHECK_THROWS_AS(rd::decode_chunk_records("X\x01\x00"), Error);  // not a records value
  CHECK_THROWS_AS(rd::decode_chunk_records(value.substr(0, value.size() - 1)), Error);
  std::string more = value;
  more[1] = static_cast<char>(4);  // claims a fourth record it does not have
  CHECK_THROWS_AS(rd::decode_chunk_records(more), Error);
}

TEST_SUITE("redis" * doctest::skip(no_server())) {
  TEST_CASE("every key written carries the profile's ttl, refreshed by later writes") {
    Profile p = isolated("redis_ttl", "ttl");
    p.set("ttl", 600);
    auto b = open(p);
    const std::string ds = "ds";
    b->create_dataset(labelled_spec(ds, 8));
    b->write_rows(ds, rows(numbered("r", 600), 8, 1, true));  // 3 chunks
    b->update_row(ds, "r5", std::nullopt, json{{"x", 1}});
    CHECK(b->delete_ids(ds, {"r7", "r300"}) == 2);
    b->checkpoints().save_checkpoint(checkpoint("m", 1, 0));
    b->checkpoints().save_checkpoint(checkpoint("m", 2, 0));
    b->progress().record_progress({"run", 0, 1, 10, {{"loss", 0.1}}, ""});

    auto c = raw();
    const auto keys = keys_under(c, p.get_string("prefix"));
    // manifest, ids, 3x(rows, chunk, labels), datasets, 2 epochs, epochs, latest, models,
    // progress, runs
    CHECK(keys.size() >= 17);
    for (const auto& k : keys) {
      const auto ttl = rd::as_int(*c.command({"TTL", k}));
      CHECK_MESSAGE((ttl > 0 && ttl <= 600), "key " << k << " has ttl " << ttl);
    }
    // A key close to expiry gets the full ttl back on the next write through vstash.
    const auto ds_keys = keys_under(c, p.get_string("prefix") + "ds:");
    REQUIRE(ds_keys.size() >= 11);
    for (const auto& k : ds_keys) {
      c.command({"EXPIRE", k, "5"});
    }
    b->write_rows(ds, rows({"extra"}, 8, 2, true));
    for (const auto& k : keys_under(c, p.get_string("prefix") + "ds:")) {
      const auto ttl = rd::as_int(*c.command({"TTL", k}));
      CHECK_MESSAGE(ttl > 500, "key " << k << " has ttl " << ttl);
    }
    b->drop_dataset(ds);
  }

  TEST_CASE("create_dataset on a stored dataset is two round trips, merged metadata or not (an ingest's watermark)") {
    Profile p = isolated("redis", "mark");
    auto b = open(p);
    auto trips = [&] { return b->stats().extra.at("round_trips").get<int64_t>(); };
    auto spec = labelled_spec("ds", 4);
    b->create_dataset(spec);
    b->write_rows("ds", rows(numbered("r", 300), 4, 1, true));
    const int64_t t0 = trips();
    const int64_t stats_cost = trips() - t0;  // with one dataset to list
    for (const int64_t mark : {int64_t{300}, int64_t{300}, int64_t{600}}) {
      CAPTURE(mark);
      spec.metadata = {{"ingest_watermark", mark}};
      const int64_t before = trips();
      b->create_dataset(spec);
      CHECK(trips() - before - stats_cost == 2);
      CHECK(b->dataset_info("ds")->spec.metadata.at("ingest_watermark") == mark);
    }
    // A WATCH left by the unchanged case must not abort the next transaction.
    b->write_rows("ds", rows({"extra"}, 4, 2, true));
    CHECK(b->count("ds", nullptr) == 301);
  }

  TEST_CASE("writes, batch reads and queries are a few pipelined round trips, not one per row") {
    Profile p = isolated("redis", "pipe");
    auto b = open(p);
    auto trips = [&] { return b->stats().extra.at("round_trips").get<int64_t>(); };
    const int64_t t0 = trips();
    const int64_t stats_cost = trips() - t0;
    auto since = [&](int64_t& mark) {
      const int64_t now = trips();
      const int64_t n = now - mark - stats_cost;
      mark = now;
      return n;
    };
    int64_t mark = trips();
    b->create_dataset(labelled_spec("ds", 128));
    since(mark);
    const int64_t n = 20000;
    auto batch = rows(numbered("r", n), 128, 5, true);
    b->write_rows("ds", batch);
    const int64_t write_trips = since(mark);
    batch.indices.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      batch.indices[static_cast<size_t>(i)] = i;  // explicit indices, as ingest --resume sends
    }
    b->write_rows("ds", batch);
    const int64_t rewrite_trips = since(mark);
    const auto all = b->read_rows("ds", 0, n);
    const int64_t read_trips = since(mark);
    CHECK(all.data == batch.data);
    CHECK(all.labels == batch.labels);
    const auto hits = b->query("ds", batch.data.row_as_float32(123), {5});
    const int64_t query_trips = since(mark);
    REQUIRE(!hits.empty());
    CHECK(hits[0].id == "r123");
    MESSAGE("round trips for " << n << " rows: write " << write_trips << ", rewrite " << rewrite_trips << ", read "
                               << read_trips << ", query " << query_trips);
    CHECK(write_trips <= 4);
    CHECK(rewrite_trips <= 5);
    CHECK(read_trips <= 4);
    CHECK(query_trips <= 12);  // 79 chunks scanned 16 per round trip
    b->drop_dataset("ds");
  }

  TEST_CASE("ttl 0 writes keys without expiry") {
    Profile p = isolated("redis", "nottl");
    auto b = open(p);
    b->create_dataset(labelled_spec("ds", 4));
    b->write_rows("ds", rows(numbered("r", 10), 4, 1, true));
    b->checkpoints().save_checkpoint(checkpoint("m", 1, 0));
    auto c = raw();
    const auto keys = keys_under(c, p.get_string("prefix"));
    CHECK(keys.size() >= 6);
    for (const auto& k : keys) {
      CHECK(rd::as_int(*c.command({"TTL", k})) == -1);
    }
    b->drop_dataset("ds");
    b->checkpoints().delete_checkpoint("m@1");
  }

  TEST_CASE("an expired dataset or checkpoint is 'expired or not found', never a partial read") {
    Profile p = isolated("redis_ttl", "exp");
    p.set("ttl", 1);
    auto b = open(p);
    b->create_dataset(labelled_spec("ds", 4));
    const auto ids = numbered("r", 700);
    b->write_rows("ds", rows(ids, 4, 1, true));
    b->checkpoints().save_checkpoint(checkpoint("m", 1, 0));
    // Until expiry every read is whole; then every read says "expired or not found".
    poll_until_expired(
        [&] {
          const auto got = b->read_rows("ds", 0, 1000);  // throws (not inside CHECK) once expired
          REQUIRE(got.size() == ids.size());
        },
        std::chrono::seconds(10));
    CHECK_THROWS_AS(b->count("ds", nullptr), NotFoundError);
    CHECK_FALSE(b->dataset_info("ds").has_value());
    poll_until_expired(
        [&] {
          const auto ck = b->checkpoints().load_checkpoint("m@1");  // throws (not inside CHECK) once expired
          REQUIRE(ck.arrays.size() == 1);
        },
        std::chrono::seconds(10));
    CHECK_THROWS_AS(b->checkpoints().load_checkpoint("m@latest"), NotFoundError);
  }

  TEST_CASE("one vanished key makes the whole dataset 'expired or not found'") {
    // Keys written in one MULTI may still expire at different moments; each kind of key is
    // removed in turn, as an expiry would, and every read must refuse the dataset.
    Profile p = isolated("redis", "part");
    auto b = open(p);
    auto c = raw();
    const std::string prefix = p.get_string("prefix");
    for (const std::string kind : {"rows:1", "chunk:1", "labels:2", "chunk:0", "ids"}) {
      CAPTURE(kind);
      const std::string ds = "d";
      b->create_dataset(labelled_spec(ds, 4));
      b->write_rows(ds, rows(numbered("r", 700), 4, 1, true));
      const std::string victim = key_ending(c, prefix + "ds:", ":" + kind);
      REQUIRE_MESSAGE(!victim.empty(), "no key ending in " << kind);
      c.command({"DEL", victim});
      auto expect_expired = [&](auto f) {
        try {
          f();
          FAIL("read succeeded after key " << victim << " vanished");
        } catch (const NotFoundError& e) {
          CHECK(mentions_expired(e));
        }
      };
      // A batch read by position costs O(rows read): it checks the manifest, the ids hash,
      // the live counts and the keys of the rows it reads, so these touch chunks 0 to 2.
      expect_expired([&] { b->read_rows(ds, 0, 1000); });
      expect_expired([&] { b->read_rows(ds, 250, 400); });
      expect_expired([&] { b->read_positions(ds, {5, 300, 600}); });
      expect_expired([&] { b->fetch(ds, {"r1", "r650"}); });
      expect_expired([&] { b->count(ds, nullptr); });
      expect_expired([&] { b->query(ds, {1, 0, 0, 0}, {}); });
      CHECK_FALSE(b->dataset_info(ds).has_value());
      // Creating it again starts a fresh, empty incarnation and removes the remnants.
      b->create_dataset(labelled_spec(ds, 4));
      CHECK(b->count(ds, nullptr) == 0);
      CHECK(b->drop_dataset(ds));
      CHECK(keys_under(c, prefix + "ds:").empty());
    }
    // A checkpoint whose hash vanished while "latest" still points at it.
    b->checkpoints().save_checkpoint(checkpoint("m", 4, 0));
    for (const auto& k : keys_under(c, prefix + "ckpt:")) {
      if (k.size() > 2 && k.compare(k.size() - 2, 2, ":4") == 0) {
        c.command({"DEL", k});
      }
    }
    try {
      b->checkpoints().load_checkpoint("m@latest");
      FAIL("loaded a vanished checkpoint");
    } catch (const NotFoundError& e) {
      CHECK(mentions_expired(e));
    }
  }

  TEST_CASE("hostile dataset names, ids and metadata round-trip and never collide") {
    Profile p = isolated("redis", "hostile");
    auto b = open(p);
    const std::string bin("b\0\x01\xff\xfe*", 6);
    const std::vector<std::string> names = {"sp ace", "new\nline", "star*", "x:y", "x%3Ay", "{tag}", bin};
    const std::vector<std::string> ids = {"a b",
                                          "line\nbreak",
                                          "*",
                                          "?",
                                          "[a-z]",
                                          "{h}",
                                          ":",
                                          "%41",
                                          "A",
                                          bin,
                                          std::string("\0", 1),
                                          "\r\n*1\r\n$4\r\nPING\r\n"};
    for (size_t d = 0; d < names.size(); ++d) {
      DatasetSpec s;
      s.name = names[d];
      s.row_shape = {2};
      s.metric = backends::Metric::euclidean;
      b->create_dataset(s);
      RowBatch batch;
      batch.ids = ids;
      batch.data = Array(DType::f32, {static_cast<int64_t>(ids.size()), 2});
      for (size_t i = 0; i < ids.size(); ++i) {
        batch.data.as<float>()[2 * i] = static_cast<float>(d * 100 + i + 1);
        batch.data.as<float>()[2 * i + 1] = 1;
        batch.metadata.push_back(json{{"id", ids[i]}, {ids[i], names[d]}, {"k*", "v\nw"}});
      }
      b->write_rows(names[d], batch);
    }
    std::set<std::string> listed;
    for (const auto& info : b->list_datasets()) {
      listed.insert(info.spec.name);
    }
    CHECK(listed == std::set<std::string>(names.begin(), names.end()));
    for (size_t d = 0; d < names.size(); ++d) {
      CAPTURE(d);
      const auto all = b->read_rows(names[d], 0, 100);
      REQUIRE(all.size() == ids.size());
      for (size_t i = 0; i < ids.size(); ++i) {
        CHECK(all.ids[i] == ids[i]);
        CHECK(all.data.as<float>()[2 * i] == static_cast<float>(d * 100 + i + 1));  // no cross-talk
        CHECK(all.metadata[i].at("id").get<std::string>() == ids[i]);
        CHECK(all.metadata[i].at(ids[i]).get<std::string>() == names[d]);
      }
      const auto got = b->fetch(names[d], {bin, "*", "nope"});
      REQUIRE(got.size() == 2);
      CHECK(got.ids[0] == bin);
      CHECK(got.ids[1] == "*");
      const auto hits = b->query(names[d], {static_cast<float>(d * 100 + 10), 1}, {3});
      REQUIRE(hits.size() == 3);
      CHECK(hits[0].id == ids[9]);
    }
    // "*" deletes one row, not every row; a metadata filter with a hostile key matches exactly.
    CHECK(b->delete_ids("star*", {"*"}) == 1);
    CHECK(b->count("star*", nullptr) == static_cast<int64_t>(ids.size()) - 1);
    const Filter f = Filter::from_json(json{{"id", "line\nbreak"}});
    CHECK(b->count("x:y", &f) == 1);
    CHECK(b->delete_where("x:y", f) == 1);
    CHECK(b->count("x%3Ay", nullptr) == static_cast<int64_t>(ids.size()));
    for (const auto& n : names) {
      CHECK(b->drop_dataset(n));
    }
    auto c = raw();
    CHECK(keys_under(c, p.get_string("prefix") + "ds:").empty());
  }

  TEST_CASE("profile errors: connection refused, wrong password, no password, ACL user") {
    Profile refused = config().profiles.at("cache_down");
    try {
      open(refused)->list_datasets();
      FAIL("connected to a closed port");
    } catch (const RetryableError& e) {
      const std::string m = e.what();
      CHECK(m.find("127.0.0.1:" + std::to_string(refused.get_int("port"))) != std::string::npos);
      CHECK(m.find("refused") != std::string::npos);
      CHECK(m.find('\n') == std::string::npos);
    }
    Profile wrong = config().profiles.at("redis");
    wrong.set("password", "not-the-password-zz9");
    try {
      open(wrong)->list_datasets();
      FAIL("authenticated with a wrong password");
    } catch (const UsageError& e) {
      const std::string m = e.what();
      CHECK(m.find("authentication failed") != std::string::npos);
      CHECK(m.find("not-the-password-zz9") == std::string::npos);
    }
    Profile wrong_user = config().profiles.at("redis_acl");
    wrong_user.set("username", "nobody");
    CHECK_THROWS_AS(open(wrong_user)->list_datasets(), UsageError);
    Profile none = config().profiles.at("redis");
    none.set("password", "");
    try {
      open(none)->list_datasets();
      FAIL("ran a command without auth");
    } catch (const UsageError& e) {
      CHECK(std::string(e.what()).find("authentication required") != std::string::npos);
    }
    Profile acl = isolated("redis_acl", "acl");
    auto b = open(acl);
    b->create_dataset(labelled_spec("ds", 2));
    b->write_rows("ds", rows(numbered("r", 3), 2, 1, true));
    CHECK(b->count("ds", nullptr) == 3);
    CHECK(b->drop_dataset("ds"));
  }

  TEST_CASE("cache tier: hits, misses, cached bytes, and no stale read after a write") {
    const auto dir = testutil::scratch_dir("cache");
    const Profile local("primary", "local", json{{"path", (dir / "local.db").string()}}, "test");
    const Profile cache = isolated("cache", "cache");
    auto a = backends::make_cached(backends::create_backend(local), cache, "local:" + dir.string());
    auto other = backends::make_cached(backends::create_backend(local), cache, "local:" + dir.string());
    const std::string ds = "train";
    a->create_dataset(labelled_spec(ds, 4));
    a->write_rows(ds, rows(numbered("r", 50), 4, 1, true));

    const auto first = a->read_rows(ds, 0, 10);
    const auto second = a->read_rows(ds, 0, 10);
    CHECK(first.data == second.data);
    CHECK(first.ids == second.ids);
    CHECK(first.labels == second.labels);
    CHECK(first.metadata == second.metadata);
    auto st = a->stats().extra.at("cache");
    CHECK(st.at("available").get<bool>());
    CHECK(st.at("session_misses").get<int64_t>() == 1);
    CHECK(st.at("session_hits").get<int64_t>() == 1);
    CHECK(st.at("hits").get<int64_t>() == 1);
    CHECK(st.at("misses").get<int64_t>() == 1);
    CHECK(st.at("bytes").get<int64_t>() >= static_cast<int64_t>(first.data.nbytes()));
    CHECK(st.at("keys").get<int64_t>() == 1);

    // A write through another process's vstash (another CachedBackend) invalidates.
    auto changed = rows({"r0"}, 4, 99, true);
    other->write_rows(ds, changed);
    const auto third = a->read_rows(ds, 0, 10);
    CHECK(third.data.slice_rows(0, 1) == changed.data);
    CHECK(a->stats().extra.at("cache").at("session_misses").get<int64_t>() == 2);

    // update_row, delete_ids and delete_where each invalidate batches and query results.
    const std::vector<float> q = {1, 1, 1, 1};
    const auto h1 = a->query(ds, q, {5});
    CHECK(hit_ids(h1) == hit_ids(a->query(ds, q, {5})));
    a->update_row(ds, "r1", std::nullopt, json{{"tag", "new"}});
    CHECK(a->read_rows(ds, 0, 10).metadata[1].at("tag") == "new");
    a->delete_ids(ds, {h1[0].id});
    for (const auto& h : a->query(ds, q, {5})) {
      CHECK(h.id != h1[0].id);
    }
    CHECK(a->read_rows(ds, 0, 100).size() == 49);
    const Filter odd = Filter::from_json(json{{"tag", "odd"}});
    const auto removed = a->delete_where(ds, odd);
    CHECK(removed > 0);
    CHECK(a->read_rows(ds, 0, 100).size() == static_cast<size_t>(49 - removed));
    const auto pos1 = a->read_positions(ds, {3, 1});
    CHECK(a->read_positions(ds, {3, 1}).ids == pos1.ids);

    // Checkpoint loads: cached, and a re-save of the same epoch is seen at once.
    a->checkpoints().save_checkpoint(checkpoint("m", 1, 0));
    CHECK(a->checkpoints().load_checkpoint("m@latest").arrays.at("parameters").as<float>()[0] == 0);
    CHECK(a->checkpoints().load_checkpoint("m@1").arrays.at("parameters").as<float>()[0] == 0);
    auto clash = checkpoint("m", 1, 5);
    clash.overwrite = false;  // refused: the cached load still gives the saved checkpoint
    CHECK_THROWS_AS(other->checkpoints().save_checkpoint(clash), ConflictError);
    CHECK(a->checkpoints().load_checkpoint("m@1").arrays.at("parameters").as<float>()[0] == 0);
    other->checkpoints().save_checkpoint(checkpoint("m", 1, 7));
    CHECK(a->checkpoints().load_checkpoint("m@1").arrays.at("parameters").as<float>()[0] == 7);
    other->checkpoints().save_checkpoint(checkpoint("m", 2, 9));
    CHECK(a->checkpoints().load_checkpoint("m@latest").epoch == 2);
    other->checkpoints().delete_checkpoint("m@2");
    CHECK(a->checkpoints().load_checkpoint("m@latest").epoch == 1);

    // Dropping the dataset: the cached batches are gone with it.
    CHECK(other->drop_dataset(ds));
    CHECK_THROWS_AS(a->read_rows(ds, 0, 10), NotFoundError);
    const auto end = a->stats().extra.at("cache");
    CHECK(end.at("hits").get<int64_t>() == 3);  // read_rows, query and read_positions repeated
  }

  TEST_CASE("cache down or silent: commands succeed from the primary and warn once") {
    const auto dir = testutil::scratch_dir("cachedown");
    const Profile local("primary", "local", json{{"path", (dir / "local.db").string()}}, "test");
    SilentListener silent;
    Profile slow = config().profiles.at("cache");
    slow.set("port", silent.port());
    slow.set("timeout_ms", 200);
    slow.set("connect_timeout_ms", 200);
    for (const Profile& cache : {config().profiles.at("cache_down"), slow}) {
      CAPTURE(cache.get_int("port"));
      StderrCapture err;
      const auto t0 = std::chrono::steady_clock::now();
      auto b = backends::make_cached(backends::create_backend(local), cache, "local:" + dir.string());
      b->create_dataset(labelled_spec("ds", 2));
      b->write_rows("ds", rows(numbered("r", 20), 2, 1, true));
      CHECK(b->read_rows("ds", 0, 20).size() == 20);
      CHECK(b->read_rows("ds", 0, 20).size() == 20);
      CHECK(b->query("ds", {1, 0}, {3}).size() == 3);
      b->checkpoints().save_checkpoint(checkpoint("m", 1, 0));
      CHECK(b->checkpoints().load_checkpoint("m@1").epoch == 1);
      const auto st = b->stats().extra.at("cache");
      CHECK_FALSE(st.at("available").get<bool>());
      CHECK(b->drop_dataset("ds"));
      const auto elapsed = std::chrono::steady_clock::now() - t0;
      const std::string text = err.finish();
      CHECK(count_of(text, "warning") == 1);
      CHECK(text.find(std::to_string(cache.get_int("port"))) != std::string::npos);
      CHECK(elapsed < std::chrono::seconds(5));  // one timeout, not one per command
    }
  }

  TEST_CASE("a dataset stored in the older layout is refused with a clear error, not misread") {
    Profile p = isolated("redis", "layout");
    auto b = open(p);
    auto c = raw();
    const std::string manifest = p.get_string("prefix") + "ds:{old}:manifest";
    c.command({"HSET", manifest, "spec", R"({"dtype":"float32","row_shape":[2],"metric":"cosine"})", "inc", "i1",
               "next_index", "1", "nchunks", "1", "gen", "3"});
    c.command({"HSET", p.get_string("prefix") + "ds:{old}:i1:rows:0", "_", "", "0", std::string("\1\0\0\0a", 5)});
    for (const auto& read :
         std::vector<std::function<void()>>{[&] { b->dataset_info("old"); }, [&] { b->read_rows("old", 0, 1); },
                                            [&] { b->write_rows("old", rows({"x"}, 2, 1, false)); }}) {
      try {
        read();
        FAIL("an old-layout dataset was read or written");
      } catch (const NotFoundError&) {
        FAIL("an old-layout dataset was reported as missing");
      } catch (const Error& e) {
        CHECK(std::string(e.what()).find("older vstash") != std::string::npos);
        CHECK(std::string(e.what()).find("ds:{old}:") != std::string::npos);
      }
    }
    CHECK(keys_under(c, p.get_string("prefix") + "ds:{old}:").size() == 2);  // untouched
    c.command({"DEL", manifest, p.get_string("prefix") + "ds:{old}:i1:rows:0"});
  }

  TEST_CASE("a manifest whose spec is not a spec is a one-line error naming the dataset, not the JSON library's text") {
    Profile p = isolated("redis", "badspec");
    auto b = open(p);
    auto c = raw();
    const std::string base = p.get_string("prefix") + "ds:{bad}:";
    for (const std::string spec :
         {R"({"dtype":"float32","row_shape":"x","metric":"cosine"})", R"({"dtype":"float32","row_shape":[2]})",
          R"({"dtype":"float99","row_shape":[2],"metric":"cosine"})"}) {
      CAPTURE(spec);
      c.command({"HSET", base + "manifest", "spec", spec, "inc", "i1", "next_index", "0", "nchunks", "0", "gen", "1",
                 "layout", "3", "ids_from", "0", "rows", "0"});
      c.command({"HSET", base + "i1:ids", "", ""});
      c.command({"SET", base + "i1:live", ""});
      for (const auto& read :
           std::vector<std::function<void()>>{[&] { b->read_rows("bad", 0, 1); }, [&] { b->count("bad", nullptr); },
                                              [&] { b->dataset_info("bad"); }}) {
        try {
          read();
          FAIL("a corrupt spec was read");
        } catch (const Error& e) {
          const std::string message = e.what();
          CHECK(message.find("dataset \"bad\": corrupt catalog entry") != std::string::npos);
          CHECK(message.find("json.exception") == std::string::npos);
          CHECK(message.find('\n') == std::string::npos);
        }
      }
    }
    c.command({"DEL", base + "manifest", base + "i1:ids", base + "i1:live"});
  }

  TEST_CASE("whole chunks of consecutive indices are staged, then renamed into place with the dataset's ttl") {
    for (const int64_t ttl : {int64_t{0}, int64_t{600}}) {
      CAPTURE(ttl);
      Profile p = isolated(ttl > 0 ? "redis_ttl" : "redis", "stage");
      p.set("ttl", ttl);
      auto b = open(p);
      b->create_dataset(labelled_spec("ds", 4));
      // Indices 100..899: chunks 1 and 2 are whole (staged), 0 and 3 are partly written.
      auto batch = rows(numbered("r", 800), 4, 7, true);
      for (int64_t i = 0; i < 800; ++i) {
        batch.indices.push_back(100 + i);
      }
      b->write_rows("ds", batch);
      auto c = raw();
      const std::string prefix = p.get_string("prefix");
      CHECK(keys_under(c, prefix + "ds:{ds}:stage:").empty());
      for (const auto& k : keys_under(c, prefix + "ds:")) {
        const auto left = rd::as_int(*c.command({"TTL", k}));
        CHECK_MESSAGE((ttl > 0 ? left > 0 && left <= ttl : left == -1), "key " << k << " has ttl " << left);
      }
      const auto back = b->read_rows("ds", 0, 1000);
      REQUIRE(back.size() == 800);
      CHECK(back.indices.front() == 100);
      CHECK(back.ids[500] == "r500");
      CHECK(std::equal(back.data.bytes().begin(), back.data.bytes().end(), batch.data.bytes().begin()));
      CHECK(back.labels->as<int64_t>()[799] == batch.labels->as<int64_t>()[799]);
      b->drop_dataset("ds");
    }
  }

  TEST_CASE("a staged chunk that vanishes before the commit is sent again; nothing staged is left behind") {
    Profile p = isolated("redis", "vanish");
    auto b = open(p);
    b->create_dataset(labelled_spec("ds", 4));
    auto c = raw();
    const rd::DatasetKeys k(rd::StoreConfig{p.get_string("prefix")}, "ds");
    auto batch = rows(numbered("r", 512), 4, 3, false);
    for (int64_t i = 0; i < 512; ++i) {
      batch.indices.push_back(i);
    }
    {
      rd::StagedChunks staged(c, k, batch);
      c.flush();  // the staged SETs' replies, which a write reads with its WATCH
      const auto keys = keys_under(c, k.base + "stage:");
      REQUIRE(keys.size() == 2);
      CHECK(rd::as_int(*c.command({"PTTL", keys.front()})) > 0);  // a dead writer's leftovers expire
      REQUIRE(staged.find(0) != nullptr);
      c.command({"DEL", keys.front()});
      staged.append_watch();
      staged.check_watched(*c.flush().back());
      c.command({"UNWATCH"});
      CHECK(staged.find(0) == nullptr);
      CHECK(staged.find(1) == nullptr);
    }
    CHECK(keys_under(c, k.base + "stage:").empty());
    b->drop_dataset("ds");
  }

  TEST_CASE("ids another process changed are looked up again, not taken from this process's memory") {
    Profile p = isolated("redis", "known");
    auto b = open(p);
    b->create_dataset(labelled_spec("ds", 4));
    b->write_rows("ds", rows({"a", "b"}, 4, 1, true));  // this process now knows a=0, b=1
    // Another process deletes "a" and adds "c" (at index 2).
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      int code = 1;
      try {
        auto other = open(p);
        code = other->delete_ids("ds", {"a"}) == 1 ? 0 : 2;
        other->write_rows("ds", rows({"c"}, 4, 2, true));
      } catch (...) {
        code = 3;
      }
      _exit(code);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    // "c" must replace itself and "a" come back as a new row: three rows, no duplicate.
    b->write_rows("ds", rows({"c", "a"}, 4, 3, true));
    CHECK(b->count("ds", nullptr) == 3);
    const auto all = b->read_rows("ds", 0, 10);
    REQUIRE(all.size() == 3);
    std::map<std::string, int64_t> where;
    for (size_t i = 0; i < all.size(); ++i) {
      where[all.ids[i]] = all.indices[i];
    }
    CHECK(where.size() == 3);
    CHECK(where.at("b") == 1);
    CHECK(where.at("c") == 2);
    CHECK(where.at("a") == 3);
    b->drop_dataset("ds");
  }

  TEST_CASE("a write checks every chunk unless this process kept the dataset whole; a lost key is never written over") {
    Profile p = isolated("redis", "light");
    auto b = open(p);
    auto c = raw();
    const std::string prefix = p.get_string("prefix");
    const std::string manifest = prefix + "ds:{ds}:manifest";
    auto key_of = [&](const std::string& tail) { return key_ending(c, prefix + "ds:{ds}:", tail); };
    b->create_dataset(labelled_spec("ds", 4));
    b->write_rows("ds", rows(numbered("r", 700), 4, 1, true));  // chunks 0-2
    b->write_rows("ds", rows(numbered("s", 10), 4, 2, true));   // light: still this process's own

    // The last chunk's records gone (what an expiry leaves: every key's ttl is set by one
    // EXEC): even the light check sees it.
    c.command({"DEL", key_of(":rows:2")});
    CHECK_THROWS_AS(b->write_rows("ds", rows({"t0"}, 4, 3, true)), NotFoundError);
    b->drop_dataset("ds");

    // A middle key gone, and the dataset changed since by someone else (gen moved): the next
    // write checks every chunk and refuses.
    b->create_dataset(labelled_spec("ds", 4));
    b->write_rows("ds", rows(numbered("r", 700), 4, 1, true));
    c.command({"DEL", key_of(":chunk:0")});
    c.command({"HINCRBY", manifest, "gen", "1"});
    CHECK_THROWS_AS(b->write_rows("ds", rows({"t1"}, 4, 4, true)), NotFoundError);
    // So does the watermark's create_dataset: it starts the dataset over instead.
    b->create_dataset(labelled_spec("ds", 4));
    CHECK(b->count("ds", nullptr) == 0);
    b->drop_dataset("ds");
  }

  TEST_CASE("an ingest adds no id to the ids hash; the first lookup adds them all, and upserts never duplicate") {
    Profile p = isolated("redis", "lazyids");
    auto b = open(p);
    b->create_dataset(labelled_spec("ds", 4));
    auto c = raw();
    const std::string prefix = p.get_string("prefix");
    auto manifest = [&](const std::string& field) {
      auto r = c.command({"HGET", prefix + "ds:{ds}:manifest", field});
      return rd::is_nil(*r) ? std::string("nil") : rd::as_string(*r);
    };
    auto hash_len = [&] { return rd::as_int(*c.command({"HLEN", key_ending(c, prefix + "ds:{ds}:", ":ids")})); };
    b->write_rows("ds", rows(numbered("r", 600), 4, 1, true));  // chunks 0-2
    CHECK(manifest("ids_from") == "0");
    CHECK(hash_len() == 1);  // the sentinel only: no field per row
    CHECK(b->count("ds", nullptr) == 600);

    // The first lookup answers from the chunks' records and adds their ids.
    const auto got = b->fetch("ds", {"r599", "r0", "nope", "r300"});
    REQUIRE(got.size() == 3);
    CHECK(got.indices == std::vector<int64_t>{599, 0, 300});
    CHECK(manifest("ids_from") == "3");
    CHECK(hash_len() == 601);

    // Rows appended past ids_from get no field; rows below it (the partial chunk 2) do.
    b->write_rows("ds", rows(numbered("s", 400), 4, 2, true));  // indices 600-999: chunks 2-3
    CHECK(hash_len() == 601 + (768 - 600));
    // An id the hash holds that moves past ids_from keeps a correct field.
    auto moved = rows({"r5"}, 4, 3, true);
    moved.indices = {1500};
    b->write_rows("ds", moved);
    CHECK(b->delete_ids("ds", {"r5"}) == 1);  // a lookup by a write, with no fetch before it
    CHECK(b->fetch("ds", {"r5"}).size() == 0);

    // Another process (no memory of these writes) upserts ids past ids_from, deletes and
    // updates one there: found by reading records, so no duplicate and no stale field.
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      int code = 1;
      try {
        auto other = open(p);
        other->write_rows("ds", rows({"s399", "s100", "t0"}, 4, 4, true));
        code = other->delete_ids("ds", {"s200", "s201"}) == 2 ? 0 : 2;
        other->update_row("ds", "s300", std::nullopt, json{{"seen", true}});
      } catch (...) {
        code = 3;
      }
      _exit(code);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    CHECK(b->count("ds", nullptr) == 600 + 400 - 1 - 2 + 1);
    const auto all = b->read_rows("ds", 0, 2000);
    std::map<std::string, int64_t> where;
    for (size_t i = 0; i < all.size(); ++i) {
      CHECK_MESSAGE(where.emplace(all.ids[i], all.indices[i]).second, "duplicate id " << all.ids[i]);
    }
    CHECK(where.at("s399") == 999);
    CHECK(where.at("s100") == 700);
    CHECK(where.count("s200") == 0);
    CHECK(b->fetch("ds", {"s300"}).metadata.at(0).at("seen") == true);
    CHECK(b->fetch("ds", {"s200", "t0"}).ids == std::vector<std::string>{"t0"});
    CHECK(hash_len() == static_cast<int64_t>(where.size()) + 1);  // every id now, and no stale one

    // A dataset stored before ids_from existed has every id in its hash: writes keep adding them.
    c.command({"HDEL", prefix + "ds:{ds}:manifest", "ids_from"});
    b->write_rows("ds", rows({"u0", "u1"}, 4, 5, true));
    CHECK(hash_len() == static_cast<int64_t>(where.size()) + 3);
    CHECK(b->fetch("ds", {"u1", "r0"}).size() == 2);
    b->drop_dataset("ds");
  }

  TEST_CASE("rows written into a chunk that already holds rows keep their neighbours") {
    // Blocks end inside a chunk; the next block (or an upsert that moves a row) rewrites
    // that chunk's records value, which must keep every record already there.
    Profile p = isolated("redis", "merge");
    auto b = open(p);
    b->create_dataset(labelled_spec("ds", 4));
    auto first = rows(numbered("r", 300), 4, 1, true);
    b->write_rows("ds", first);
    auto second = rows(numbered("s", 100), 4, 2, true);
    second.indices.resize(100);
    for (int64_t i = 0; i < 100; ++i) {
      second.indices[static_cast<size_t>(i)] = 300 + i;  // chunk 1 (slots 44..143) is shared
    }
    b->write_rows("ds", second);
    auto moved = rows({"r5"}, 4, 3, true);  // r5 leaves chunk 0 for index 450 (chunk 1)
    moved.indices = {450};
    b->write_rows("ds", moved);
    const auto all = b->read_rows("ds", 0, 1000);
    REQUIRE(all.size() == 400);
    std::map<std::string, int64_t> where;
    for (size_t i = 0; i < all.size(); ++i) {
      where[all.ids[i]] = all.indices[i];
    }
    CHECK(where.at("r0") == 0);
    CHECK(where.at("r299") == 299);
    CHECK(where.at("s0") == 300);
    CHECK(where.at("s99") == 399);
    CHECK(where.at("r5") == 450);
    CHECK(b->fetch("ds", {"r4", "r6", "r5"}).size() == 3);
    CHECK(b->delete_ids("ds", {"r4", "s50"}) == 2);
    CHECK(b->count("ds", nullptr) == 398);
    CHECK(b->fetch("ds", {"r3", "r5", "s49", "s51"}).size() == 4);
    b->drop_dataset("ds");
  }
}
