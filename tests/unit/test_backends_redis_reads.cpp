// SPDX-License-Identifier: MIT
// Redis batch reads by position (layout 3, DatasetRows::read_fast) against the real test server:
// a reader beside a writer never returns rows of a half-applied write, with and without
// deleted rows, one shard or four; a reader between a sharded write's new versions and its
// commit sees the previous commit whole; a dataset of the previous layout is read as it is
// and migrated by its first write. Runs only when $VSTASH_REDIS_TEST_CONFIG names the
// server's redis.yaml.
#include <doctest/doctest.h>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <set>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#include "backends/redis/redisconnection.hpp"
#include "backends/redis/redisrows.hpp"
#include "backends/registry.hpp"
#include "src/errors.hpp"
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

constexpr int64_t k_dim = 8;

DatasetSpec spec(const std::string& name) {
  DatasetSpec s;
  s.name = name;
  s.dtype = DType::f32;
  s.row_shape = {k_dim};
  s.label_dtype = DType::i64;
  s.label_shape = {};
  return s;
}

// Rows that verify themselves: row k of version v has id "rK", the vector (k, v, k, v, ...),
// label v and metadata {"v": v, "pad": 0 to 12 "x"s}: the records change length with the
// version, so a reader that used another version's slot offsets would misread them.
RowBatch versioned(const std::vector<int64_t>& which, int64_t v) {
  RowBatch b;
  const auto n = static_cast<int64_t>(which.size());
  b.data = Array(DType::f32, {n, k_dim});
  b.labels = Array(DType::i64, {n});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = which[static_cast<size_t>(i)];
    b.ids.push_back("r" + std::to_string(k));
    for (int64_t d = 0; d < k_dim; ++d) {
      b.data.as<float>()[i * k_dim + d] = static_cast<float>(d % 2 == 0 ? k : v);
    }
    b.labels->as<int64_t>()[i] = v;
    b.metadata.push_back(json{{"v", v}, {"pad", std::string(static_cast<size_t>(v % 5) * 3, 'x')}});
  }
  return b;
}

// Checks every row of b is whole and of one version, and that row i is live[positions[i]];
// returns the version.
int64_t check_batch(const RowBatch& b, const std::vector<int64_t>& live, const std::vector<int64_t>& positions) {
  REQUIRE(b.size() == positions.size());
  REQUIRE(b.labels.has_value());
  const int64_t v = b.labels->as<int64_t>()[0];
  for (size_t i = 0; i < b.size(); ++i) {
    const int64_t k = live[static_cast<size_t>(positions[i])];
    const auto row = static_cast<int64_t>(i);
    INFO("row " << i << " of the batch, position " << positions[i]);
    REQUIRE(b.ids[i] == "r" + std::to_string(k));
    REQUIRE(b.labels->as<int64_t>()[row] == v);
    REQUIRE(b.metadata[i] == json({{"v", v}, {"pad", std::string(static_cast<size_t>(v % 5) * 3, 'x')}}));
    for (int64_t d = 0; d < k_dim; ++d) {
      REQUIRE(b.data.as<float>()[row * k_dim + d] == static_cast<float>(d % 2 == 0 ? k : v));
    }
  }
  return v;
}

// As check_batch for a streamed batch (Backend::read_samples): data and labels only.
int64_t check_samples(const RowBatch& b, const std::vector<int64_t>& live, const std::vector<int64_t>& positions) {
  REQUIRE(b.size() == positions.size());
  REQUIRE(b.labels.has_value());
  const int64_t v = b.labels->as<int64_t>()[0];
  for (size_t i = 0; i < b.size(); ++i) {
    const int64_t k = live[static_cast<size_t>(positions[i])];
    const auto row = static_cast<int64_t>(i);
    INFO("row " << i << " of the streamed batch, position " << positions[i]);
    REQUIRE(b.labels->as<int64_t>()[row] == v);
    for (int64_t d = 0; d < k_dim; ++d) {
      REQUIRE(b.data.as<float>()[row * k_dim + d] == static_cast<float>(d % 2 == 0 ? k : v));
    }
  }
  return v;
}

// A chunk's records in layout 2's sequential value ('R', count, then slot, length, record).
std::string encode_v2(const rd::ChunkRecords& records) {
  std::string out = "R";
  out.push_back(static_cast<char>(records.size() & 0xff));
  out.push_back(static_cast<char>(records.size() >> 8));
  for (const auto& [slot, record] : records) {
    const auto n = static_cast<uint32_t>(record.size());
    out.push_back(static_cast<char>(slot));
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out.append(record);
  }
  return out;
}

// Every key under the profile's prefix.
std::set<std::string> keys_under(const Profile& p) {
  rd::Connection c(rd::ConnectOptions::from_profile(p));
  std::set<std::string> out;
  std::string cursor = "0";
  do {
    auto r = c.command({"SCAN", cursor, "MATCH", p.get_string("prefix") + "*", "COUNT", "1000"});
    cursor = rd::as_string(rd::element(*r, 0));
    for (const auto& k : rd::string_array(rd::element(*r, 1))) {
      out.insert(k);
    }
  } while (cursor != "0");
  return out;
}

}  // namespace

TEST_SUITE("redis" * doctest::skip(no_server())) {
  TEST_CASE("a reader beside a writer sees every batch whole, of one version, dense or with deleted rows") {
    // shards 4: the dataset spread over shards, chunks as copy-on-write versions (redisshards.cpp)
    for (const auto& [holes, shards] :
         {std::pair{false, 1}, std::pair{true, 1}, std::pair{false, 4}, std::pair{true, 4}}) {
      CAPTURE(holes);
      CAPTURE(shards);
      Profile p = isolated("redis", "rw");
      p.set("shards_per_dataset", shards);
      auto writer = open(p);
      auto reader = open(p);
      const std::string ds = "d";
      const int64_t n = 1500;  // 6 chunks, the last one partial
      writer->create_dataset(spec(ds));
      std::vector<int64_t> live(static_cast<size_t>(n));
      for (int64_t k = 0; k < n; ++k) {
        live[static_cast<size_t>(k)] = k;
      }
      writer->write_rows(ds, versioned(live, 0));
      if (holes) {  // every 7th row deleted: positions are ranks among the live rows
        std::vector<std::string> gone;
        std::vector<int64_t> kept;
        for (const auto k : live) {
          (k % 7 == 3 ? gone.push_back("r" + std::to_string(k)) : kept.push_back(k));
        }
        CHECK(writer->delete_ids(ds, gone) == static_cast<int64_t>(gone.size()));
        live = kept;
      }
      const auto rows = static_cast<int64_t>(live.size());
      // The writer rewrites every live row with a new version, one atomic write_rows each.
      std::atomic<int64_t> version{0};
      std::atomic<bool> stop{false};
      std::exception_ptr failure;
      std::thread w([&] {
        try {
          for (int64_t v = 1; !stop.load(); ++v) {
            writer->write_rows(ds, versioned(live, v));
            version.store(v);
          }
        } catch (...) {
          failure = std::current_exception();
        }
      });
      struct Join {  // a failed check stops and joins the writer before the test unwinds
        std::atomic<bool>& stop;
        std::thread& w;
        ~Join() {
          stop.store(true);
          if (w.joinable()) {
            w.join();
          }
        }
      } join{stop, w};
      std::mt19937_64 rng(7);
      std::vector<int64_t> order(static_cast<size_t>(rows));
      for (int64_t i = 0; i < rows; ++i) {
        order[static_cast<size_t>(i)] = i;
      }
      std::set<int64_t> versions;
      int64_t batches = 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while ((version.load() < 40 || batches < 400) && !failure && std::chrono::steady_clock::now() < deadline) {
        std::shuffle(order.begin(), order.end(), rng);
        const std::vector<int64_t> positions(order.begin(), order.begin() + 64);
        versions.insert(check_batch(reader->read_positions(ds, positions), live, positions));
        versions.insert(check_samples(reader->read_samples(ds, positions), live, positions));
        if (batches % 10 == 0) {  // a range: runs of consecutive slots, one GETRANGE each
          const int64_t first = static_cast<int64_t>(rng() % static_cast<uint64_t>(rows - 300));
          std::vector<int64_t> range(300);
          for (int64_t i = 0; i < 300; ++i) {
            range[static_cast<size_t>(i)] = first + i;
          }
          versions.insert(check_batch(reader->read_rows(ds, first, 300), live, range));
        }
        ++batches;
      }
      stop.store(true);
      w.join();
      if (failure) {
        std::rethrow_exception(failure);
      }
      MESSAGE(batches << " batches read beside " << version.load() << " writes, " << versions.size()
                      << " versions seen");
      CHECK(versions.size() >= 5);  // the reads did interleave with the writes
      writer->drop_dataset(ds);
    }
  }

  TEST_CASE("shards: a reader between a sharded write's new versions and its commit sees the old rows whole") {
    Profile p = isolated("redis", "shards");
    p.set("shards_per_dataset", 4);
    auto writer = open(p);
    auto reader = open(p);
    const int64_t n = 1500;  // 6 chunks over 4 shards, the last partial
    std::vector<int64_t> live(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) {
      live[static_cast<size_t>(k)] = k;
    }
    writer->create_dataset(spec("d"));
    writer->write_rows("d", versioned(live, 0));
    REQUIRE(writer->dataset_info("d")->extra.at("shards") == 4);
    reader->fetch("d", {"r0"});  // the first lookup indexes the ids (a mutation: not from inside the hook)
    const auto before = keys_under(p);
    int calls = 0;
    int64_t rows = n;  // what a reader must see in the hook: the last commit's rows, whole
    int64_t version = 0;
    auto check_all = [&] {
      const std::vector<int64_t> positions(live.begin(), live.begin() + rows);
      CHECK(check_batch(reader->read_rows("d", 0, rows), live, positions) == version);  // head + fan-out
      std::vector<std::string> ids;
      for (int64_t k = 0; k < rows; k += 97) {
        ids.push_back("r" + std::to_string(k));
      }
      for (const auto& meta : reader->fetch("d", ids).metadata) {
        CHECK(meta.at("v") == version);  // the snapshot path
      }
      CHECK(reader->count("d", nullptr) == rows);
    };
    rd::before_commit_hook() = [&] {
      ++calls;
      check_all();
    };
    struct Reset {
      ~Reset() { rd::before_commit_hook() = nullptr; }
    } reset;
    writer->write_rows("d", versioned(live, 1));  // every chunk rewritten: 6 new versions
    CHECK(calls == 1);
    version = 1;
    check_all();
    // Deleting a row and updating one copy their chunks' other parts into new versions too.
    writer->delete_ids("d", {"r1499"});
    rows = n - 1;
    writer->update_row("d", "r3", std::nullopt, json{{"v", 1}});
    CHECK(calls == 3);
    check_all();
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

  TEST_CASE(
      "shards: a writer killed between its new versions and its commit changes nothing, and drop removes its keys") {
    Profile p = isolated("redis", "killed");
    p.set("shards_per_dataset", 4);
    auto store = open(p);
    const int64_t n = 1500;
    std::vector<int64_t> live(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) {
      live[static_cast<size_t>(k)] = k;
    }
    store->create_dataset(spec("d"));
    store->write_rows("d", versioned(live, 0));
    const auto before = keys_under(p);
    const pid_t pid = fork();
    if (pid == 0) {  // the writer, killed (no destructor runs) once its versions exist
      rd::before_commit_hook() = [] { std::_Exit(0); };
      open(p)->write_rows("d", versioned(live, 1));
      std::_Exit(1);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    CHECK(check_batch(store->read_rows("d", 0, n), live, live) == 0);
    CHECK(keys_under(p).size() > before.size());  // its versions are there, unreferenced
    store->write_rows("d", versioned(live, 2));
    CHECK(check_batch(store->read_rows("d", 0, n), live, live) == 2);
    CHECK(store->drop_dataset("d"));
    CHECK(keys_under(p).size() <= 1);  // the datasets set, if anything
  }

  TEST_CASE("shards: an ingest block of a sharded dataset stages no chunk and takes three round trips") {
    Profile p = isolated("redis", "stage");
    p.set("shards_per_dataset", 4);
    auto writer = open(p);
    writer->create_dataset(spec("d"));
    std::vector<int64_t> live(1024);  // 4 whole chunks at consecutive indices, as ingest writes
    for (size_t k = 0; k < live.size(); ++k) {
      live[k] = static_cast<int64_t>(k);
    }
    RowBatch b = versioned(live, 0);
    b.indices = live;
    size_t staged = 0;
    int calls = 0;
    rd::before_commit_hook() = [&] {  // between the new versions and the commit
      ++calls;
      for (const auto& key : keys_under(p)) {
        staged += key.find(":stage:") != std::string::npos ? 1 : 0;
      }
    };
    struct Reset {
      ~Reset() { rd::before_commit_hook() = nullptr; }
    } reset;
    writer->write_rows("d", b);
    CHECK(calls == 1);
    CHECK(staged == 0);
    CHECK(check_batch(writer->read_rows("d", 0, 1024), live, live) == 0);
    // The next block: its version comes with the snapshot, so three round trips (WATCH and
    // snapshot, the new versions, the commit), one for each step a reader must not straddle.
    rd::before_commit_hook() = nullptr;
    auto trips = [&] { return writer->stats().extra.at("round_trips").get<int64_t>(); };
    const int64_t t0 = trips();
    const int64_t stats_cost = trips() - t0;
    std::vector<int64_t> next(1024);
    for (size_t k = 0; k < next.size(); ++k) {
      next[k] = 1024 + static_cast<int64_t>(k);
    }
    RowBatch more = versioned(next, 0);
    more.indices = next;
    const int64_t before = trips();
    writer->write_rows("d", more);
    CHECK(trips() - before - stats_cost == 3);
    live.insert(live.end(), next.begin(), next.end());
    CHECK(check_batch(writer->read_rows("d", 0, 2048), live, live) == 0);
    CHECK(writer->drop_dataset("d"));
    CHECK(keys_under(p).size() <= 1);  // no pending entry nor version left
  }

  TEST_CASE("a streamed batch (read_samples) equals read_positions' data and labels and reads no records") {
    for (const bool holes : {false, true}) {
      CAPTURE(holes);
      const Profile p = isolated("redis", "samples");
      auto b = open(p);
      const std::string ds = "d";
      b->create_dataset(spec(ds));
      std::vector<int64_t> live(1000);
      for (int64_t k = 0; k < 1000; ++k) {
        live[static_cast<size_t>(k)] = k;
      }
      b->write_rows(ds, versioned(live, 3));
      if (holes) {
        b->delete_ids(ds, {"r0", "r255", "r256", "r700"});
        std::erase_if(live, [](int64_t k) { return k == 0 || k == 255 || k == 256 || k == 700; });
      }
      const std::vector<int64_t> positions = {5, 4, 254, 255, 256, 257, 995, 0, 1, 2, 600};
      const auto full = b->read_positions(ds, positions);  // warm: the head and offset tables are cached
      check_batch(full, live, positions);
      const auto samples = b->read_samples(ds, positions);
      check_samples(samples, live, positions);
      CHECK(std::memcmp(samples.data.bytes().data(), full.data.bytes().data(), full.data.bytes().size()) == 0);
      CHECK(std::memcmp(samples.labels->bytes().data(), full.labels->bytes().data(), full.labels->bytes().size()) == 0);
      // Every record of chunk 0 made unreadable by hand (gen unchanged, the offset table kept):
      // read_positions reads them and fails; read_samples never reads them.
      rd::Connection c(rd::ConnectOptions::from_profile(p));
      const std::string base = p.get_string("prefix") + "ds:{d}:";
      const std::string inc = rd::as_string(*c.command({"HGET", base + "manifest", "inc"}));
      const std::string key = base + inc + ":rows:0";
      const auto len = static_cast<size_t>(rd::as_int(*c.command({"STRLEN", key})));
      c.command({"SETRANGE", key, std::to_string(rd::k_records_data), std::string(len - rd::k_records_data, '\xff')});
      CHECK_THROWS_AS(b->read_positions(ds, positions), Error);
      check_samples(b->read_samples(ds, positions), live, positions);
      b->drop_dataset(ds);
    }
  }

  TEST_CASE("a dataset of layout 2 is read as it is, and its first write migrates it to layout 3") {
    const Profile p = isolated("redis", "v2");
    auto b = open(p);
    const std::string ds = "d";
    b->create_dataset(spec(ds));
    std::vector<int64_t> all(700);
    for (int64_t k = 0; k < 700; ++k) {
      all[static_cast<size_t>(k)] = k;
    }
    b->write_rows(ds, versioned(all, 1));
    b->delete_ids(ds, {"r5", "r300", "r600"});
    std::vector<int64_t> live;
    for (const auto k : all) {
      if (k != 5 && k != 300 && k != 600) {
        live.push_back(k);
      }
    }
    // Back to what the previous version wrote: 'R' records values, no counts, layout 2.
    rd::Connection c(rd::ConnectOptions::from_profile(p));
    const std::string base = p.get_string("prefix") + "ds:{d}:";
    const std::string inc = rd::as_string(*c.command({"HGET", base + "manifest", "inc"}));
    for (int64_t chunk = 0; chunk < 3; ++chunk) {
      const std::string key = base + inc + ":rows:" + std::to_string(chunk);
      const auto value = c.command({"GET", key});
      c.command({"SET", key, encode_v2(rd::decode_chunk_records(rd::as_view(*value)))});
    }
    c.command({"HDEL", base + "manifest", "rows"});
    c.command({"HSET", base + "manifest", "layout", "2"});
    c.command({"DEL", base + inc + ":live"});

    const std::vector<int64_t> positions = {0, 4, 5, 298, 299, 696, 2, 597, 598};
    check_batch(b->read_positions(ds, positions), live, positions);
    std::vector<int64_t> range(697);
    for (int64_t i = 0; i < 697; ++i) {
      range[static_cast<size_t>(i)] = i;
    }
    check_batch(b->read_rows(ds, 0, 1000), live, range);
    CHECK(rd::as_string(*c.command({"HGET", base + "manifest", "layout"})) == "2");  // reads change nothing
    CHECK(b->dataset_info(ds)->rows == 697);

    b->write_rows(ds, versioned({42}, 1));  // rewrites one row, as it was
    CHECK(rd::as_string(*c.command({"HGET", base + "manifest", "layout"})) == "3");
    CHECK(rd::as_int(*c.command({"HGET", base + "manifest", "rows"})) == 697);
    CHECK(rd::as_view(*c.command({"GET", base + inc + ":rows:1"})).substr(0, 1) == "T");
    check_batch(b->read_positions(ds, positions), live, positions);
    check_batch(b->read_rows(ds, 0, 1000), live, range);
    b->drop_dataset(ds);
  }
}
