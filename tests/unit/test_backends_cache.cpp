// SPDX-License-Identifier: MIT
// The cache tier (backends/redis/cachedbackend, backends/redis/rediscache) against the real
// test server: a hit costs one round trip and never opens the primary, shuffled batches are
// cached by row (another seed hits), the memory tier, and exact invalidation while a write is
// in progress. Runs with the redis suite ($VSTASH_REDIS_TEST_CONFIG, the redis_unit entry);
// the plain `unit` run reports these cases as skipped. The two-process test is in
// tests/integration/redis_test.py (test_cache_tier_two_processes).
#include <doctest/doctest.h>
#include <algorithm>
#include <numeric>

#include "backends/redis/cachedbackend.hpp"
#include "backends/redis/rediscache.hpp"
#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/testutil.hpp"
#include "tests/unit/redistestserver.hpp"
#include "workflows/training/sharding.hpp"

using namespace vstash;
using backends::Backend;
using backends::RowBatch;
using json = nlohmann::json;
namespace rd = vstash::backends::redis;

namespace {

using redistest::config;
using redistest::isolated;
using redistest::no_server;

// A local primary in a scratch directory, opened through a counter. `profile` is the store
// itself, `cached_profile` the one make_cached reads (with cache_memory_mb).
struct Primary {
  Profile profile;
  Profile cached_profile;
  int opens = 0;
  explicit Primary(const std::string& tag, int64_t memory_mb = 0)
      : profile("primary", "local", json{{"path", (testutil::scratch_dir(tag) / "local.db").string()}}, "test"),
        cached_profile(profile) {
    if (memory_mb > 0) {
      cached_profile.set("cache_memory_mb", memory_mb);
    }
  }
  std::unique_ptr<Backend> cached(const Profile& cache) {
    return backends::make_cached(
        [this] {
          ++opens;
          return backends::create_backend(profile);
        },
        cached_profile, cache);
  }
};

backends::DatasetSpec spec(const std::string& name, int64_t dim) {
  backends::DatasetSpec s;
  s.name = name;
  s.row_shape = {dim};
  s.label_dtype = DType::i64;
  return s;
}

RowBatch rows(int64_t n, int64_t dim, uint32_t seed) {
  RowBatch b;
  b.data = testutil::random_f32(n, dim, seed);
  b.labels = Array(DType::i64, {n});
  for (int64_t i = 0; i < n; ++i) {
    b.ids.push_back("r" + std::to_string(i));
    b.labels->as<int64_t>()[i] = i * 7 + seed;
    b.metadata.push_back(json{{"i", i}});
  }
  return b;
}

void check_same(const RowBatch& a, const RowBatch& b) {
  CHECK(a.ids == b.ids);
  CHECK(a.indices == b.indices);
  CHECK(a.data == b.data);
  REQUIRE(a.labels.has_value() == b.labels.has_value());
  if (a.labels) {
    CHECK(*a.labels == *b.labels);
  }
  CHECK(a.metadata == b.metadata);
}

std::vector<int64_t> slice(const std::vector<int64_t>& order, size_t begin, size_t n) {
  return {order.begin() + static_cast<std::ptrdiff_t>(begin),
          order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), begin + n))};
}

}  // namespace

TEST_SUITE("redis" * doctest::skip(no_server())) {
  TEST_CASE("cache tier: a cached batch, dataset and checkpoint are served without opening the primary") {
    const Profile cache = isolated("cache", "cache1rt");
    Primary p("cache1rt");
    auto writer = p.cached(cache);
    writer->create_dataset(spec("ds", 8));
    writer->write_rows("ds", rows(300, 8, 1));
    auto cp = backends::Checkpoint{};
    cp.model = "m";
    cp.epoch = 3;
    cp.arrays.emplace("w", testutil::random_f32(2, 2, 5));
    writer->checkpoints().save_checkpoint(cp);
    const auto order = training::epoch_order(300, true, 7, 0);
    const auto batch = slice(order, 32, 64);
    const RowBatch truth = writer->read_positions("ds", batch);  // a miss: fetched and filed
    const auto info = writer->dataset_info("ds");
    writer->checkpoints().load_checkpoint("m@latest");

    const int opened = p.opens;
    auto reader = p.cached(cache);
    const auto again = reader->dataset_info("ds");
    REQUIRE(again.has_value());
    CHECK(again->rows == 300);
    CHECK(again->next_index == info->next_index);
    CHECK(again->spec.label_dtype == DType::i64);
    check_same(reader->read_positions("ds", batch), truth);
    CHECK(reader->checkpoints().load_checkpoint("m@latest").arrays.at("w") == cp.arrays.at("w"));
    CHECK(p.opens == opened);  // the reader never opened the primary
  }

  TEST_CASE("cache tier: a row lookup is one round trip, with and without the memory tier") {
    for (const int64_t memory : {int64_t{0}, int64_t{1} << 20}) {
      CAPTURE(memory);
      const Profile profile = isolated("cache", "cacherows");
      rd::Cache c(profile, memory);
      const std::vector<int64_t> positions = {5, 1, 9, 1};
      auto first = c.lookup_rows("s", positions);  // connects, creates the token
      REQUIRE(first.has_value());
      CHECK(std::none_of(first->values.begin(), first->values.end(), [](const auto& v) { return v.has_value(); }));
      c.store_rows("s", first->generation, {5, 1, 9}, {"five", "one", "nine"});
      const auto before = c.round_trips();
      auto hit = c.lookup_rows("s", positions);
      CHECK(c.round_trips() == before + 1);
      REQUIRE(hit.has_value());
      CHECK(hit->generation == first->generation);
      CHECK(hit->values == std::vector<std::optional<std::string>>{"five", "one", "nine", "one"});
      // A write through another process's cache: the next lookup misses everything (memory
      // included), still in one round trip.
      rd::Cache writer(profile);
      writer.end_write("s", writer.begin_write("s"));
      const auto before_miss = c.round_trips();
      auto miss = c.lookup_rows("s", positions);
      CHECK(c.round_trips() == before_miss + 1);
      REQUIRE(miss.has_value());
      CHECK(miss->generation != first->generation);
      CHECK(std::none_of(miss->values.begin(), miss->values.end(), [](const auto& v) { return v.has_value(); }));
    }
  }

  TEST_CASE("cache tier: a write in progress anywhere makes every lookup bypass the cache and every store a no-op") {
    const Profile profile = isolated("cache", "cachewip");
    rd::Cache reader(profile, 1 << 20);
    rd::Cache writer(profile);
    auto l = reader.lookup_rows("s", {0, 1});
    REQUIRE(l.has_value());
    reader.store_rows("s", l->generation, {0, 1}, {"a", "b"});
    auto v = reader.lookup("s", "k");
    REQUIRE(v.has_value());
    reader.store("s", v->generation, "k", "old");
    REQUIRE(reader.lookup_rows("s", {0, 1})->values[1] == "b");

    const auto token = writer.begin_write("s");
    CHECK_FALSE(reader.lookup_rows("s", {0, 1}).has_value());  // memory held rows: still bypassed
    CHECK_FALSE(reader.lookup("s", "k").has_value());
    reader.store("s", v->generation, "k", "stale");  // an old token: refused
    reader.store_rows("s", l->generation, {0}, {"stale"});
    writer.end_write("s", token);

    auto after = reader.lookup_rows("s", {0, 1});
    REQUIRE(after.has_value());
    CHECK(after->generation != l->generation);
    CHECK_FALSE(after->values[0].has_value());
    CHECK_FALSE(after->values[1].has_value());
    auto k = reader.lookup("s", "k");
    REQUIRE(k.has_value());
    CHECK_FALSE(k->value.has_value());
    // A store under a token that was current at lookup but replaced before the store lands nowhere.
    auto w2 = writer.begin_write("s");
    writer.end_write("s", w2);
    reader.store_rows("s", after->generation, {0}, {"raced"});
    CHECK_FALSE(reader.lookup_rows("s", {0})->values[0].has_value());
  }

  TEST_CASE("cache tier: shuffled batches are cached by row, so another seed's epoch hits the cache") {
    const Profile cache = isolated("cache", "cacheseed");
    Primary p("cacheseed");
    auto warm = p.cached(cache);
    warm->create_dataset(spec("ds", 4));
    warm->write_rows("ds", rows(200, 4, 2));
    const RowBatch all = warm->read_rows("ds", 0, 200);
    const auto epoch1 = training::epoch_order(200, true, 1, 0);
    for (size_t b = 0; b < epoch1.size(); b += 32) {
      warm->read_positions("ds", slice(epoch1, b, 32));
    }
    const int opened = p.opens;
    auto reader = p.cached(cache);
    const auto epoch2 = training::epoch_order(200, true, 99, 3);
    for (size_t b = 0; b < epoch2.size(); b += 32) {
      const auto positions = slice(epoch2, b, 32);
      const RowBatch got = reader->read_positions("ds", positions);
      REQUIRE(got.size() == positions.size());
      for (size_t i = 0; i < positions.size(); ++i) {
        CHECK(got.ids[i] == all.ids[static_cast<size_t>(positions[i])]);
        CHECK(got.labels->as<int64_t>()[i] == all.labels->as<int64_t>()[positions[i]]);
      }
      for (size_t i = 0; i < positions.size(); ++i) {
        CHECK(got.data.slice_rows(static_cast<int64_t>(i), 1) == all.data.slice_rows(positions[i], 1));
      }
    }
    CHECK(p.opens == opened);
    // Half cached, half not: the misses come from the primary, the batch is whole and in order.
    warm->write_rows("ds", rows(10, 4, 3));  // r0..r9 replaced: a new generation
    const std::vector<int64_t> mixed = {3, 150, 7, 151};
    warm->read_positions("ds", {150, 151});
    const RowBatch got = reader->read_positions("ds", mixed);
    const RowBatch truth = backends::create_backend(p.profile)->read_positions("ds", mixed);
    check_same(got, truth);
  }

  TEST_CASE("cache tier: cache_memory_mb keeps rows in memory, and a write elsewhere still invalidates them") {
    const Profile cache = isolated("cache", "cachemem");
    Primary p("cachemem", 4);
    auto a = p.cached(cache);
    auto b = p.cached(cache);
    a->create_dataset(spec("ds", 4));
    a->write_rows("ds", rows(50, 4, 4));
    const std::vector<int64_t> positions = {4, 2, 0};
    const RowBatch first = a->read_positions("ds", positions);
    check_same(a->read_positions("ds", positions), first);
    const json st = a->stats().extra.at("cache");
    CHECK(st.at("memory_capacity").get<int64_t>() == 4 << 20);
    CHECK(st.at("memory_hits").get<int64_t>() >= 3);
    RowBatch changed = rows(1, 4, 77);
    changed.ids = {"r2"};
    b->write_rows("ds", changed);
    const RowBatch after = a->read_positions("ds", positions);
    CHECK(after.data.slice_rows(1, 1) == changed.data);
    CHECK(after.data.slice_rows(0, 1) == first.data.slice_rows(0, 1));

    Profile bad = p.cached_profile;
    bad.set("cache_memory_mb", -1);
    try {
      backends::make_cached([] { return std::unique_ptr<Backend>(); }, bad, cache);
      FAIL("a negative cache_memory_mb was taken");
    } catch (const UsageError& e) {
      CHECK(std::string(e.what()).find("cache_memory_mb") != std::string::npos);
    }
  }
}

TEST_SUITE("redis" * doctest::skip(no_server())) {
  TEST_CASE("cache tier: a query result is cached per option, exact and ef included") {
    const Profile cache = isolated("cache", "cachequery");
    Primary p("cachequery");
    auto b = p.cached(cache);
    b->create_dataset(spec("ds", 4));
    b->write_rows("ds", rows(40, 4, 6));
    const std::vector<float> q = {1, 0, 0, 0};
    backends::QueryOptions plain;
    plain.top_k = 5;
    backends::QueryOptions exact = plain;
    exact.exact = true;
    backends::QueryOptions wide = plain;
    wide.ef = 200;
    for (const auto* o : {&plain, &exact, &wide}) {
      b->query("ds", q, *o);
    }
    const json st = b->stats().extra.at("cache");
    CHECK(st.at("session_hits").get<int64_t>() == 0);
    CHECK(st.at("session_misses").get<int64_t>() == 3);
    b->query("ds", q, exact);
    CHECK(b->stats().extra.at("cache").at("session_hits").get<int64_t>() == 1);
  }
}

#include "backends/common/cachecodec.hpp"

TEST_SUITE("backends::cachecodec") {
  TEST_CASE("query hits, rows and dataset facts round-trip through the cache's binary forms") {
    namespace cc = backends::cachecodec;
    std::vector<backends::QueryHit> hits(2);
    hits[0].id = "a";
    hits[0].index = 3;
    hits[0].score = 0.25;
    hits[0].metadata = json{{"i", 1}};
    hits[1].id = std::string("b\0c", 3);
    hits[1].values = std::vector<float>{1, 2};
    const auto back = cc::decode_hits(cc::encode_hits(hits));
    REQUIRE(back.size() == 2);
    CHECK(back[0].id == "a");
    CHECK(back[0].score == 0.25);
    CHECK(back[0].metadata == hits[0].metadata);
    CHECK(back[1].id == hits[1].id);
    CHECK(back[1].values == hits[1].values);
    CHECK(back[1].metadata.is_null());

    RowBatch b = rows(3, 4, 9);
    b.indices = {0, 1, 2};
    std::vector<std::string> encoded;
    for (size_t i = 0; i < b.size(); ++i) {
      encoded.push_back(cc::encode_row(b, i));
    }
    check_same(cc::decode_rows({encoded[0], encoded[1], encoded[2]}), b);
    CHECK_THROWS_AS(cc::decode_rows({encoded[0], std::string_view(encoded[1]).substr(0, 10)}), Error);

    backends::DatasetInfo info;
    info.spec = spec("ds", 4);
    info.rows = 7;
    info.next_index = 9;
    const auto i2 = cc::decode_info(cc::encode_info(info));
    CHECK(i2.spec.name == "ds");
    CHECK(i2.spec.row_shape == info.spec.row_shape);
    CHECK(i2.spec.label_dtype == DType::i64);
    CHECK(i2.rows == 7);
    CHECK(i2.next_index == 9);
  }
}
