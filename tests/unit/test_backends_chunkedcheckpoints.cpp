// SPDX-License-Identifier: MIT
// The chunked checkpoint store of Qdrant and Pinecone over an in-memory record store: a
// second save of MODEL@EPOCH is a conflict unless overwrite, and of savers racing on a new
// epoch exactly one wins (the bakery claims of chunkedcheckpoints.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/common/chunkedcheckpoints.hpp"
#include "src/errors.hpp"

using namespace vstash;
using vstash::backends::Checkpoint;
using vstash::backends::json;

namespace {

// Records in a map; every operation yields first so that racing savers interleave.
struct MemoryRecords {
  std::mutex mutex;
  std::map<std::string, json> records;

  backends::chunked::RecordStore store() {
    backends::chunked::RecordStore s;
    s.location = "memory";
    s.chunk_bytes = 16;  // several chunk records per array
    s.put = [this](const std::vector<std::pair<std::string, json>>& recs) {
      for (const auto& [key, fields] : recs) {
        std::this_thread::yield();
        std::lock_guard lock(mutex);
        records[key] = fields;
      }
    };
    s.get = [this](const std::vector<std::string>& keys) {
      std::this_thread::yield();
      std::lock_guard lock(mutex);
      std::map<std::string, json> out;
      for (const auto& k : keys) {
        if (auto it = records.find(k); it != records.end()) {
          out[k] = it->second;
        }
      }
      return out;
    };
    s.manifests = [this](const std::string& model) { return of_kind("manifest", model); };
    s.claims = [this](const std::string& model) { return of_kind("claim", model); };
    s.remove = [this](const std::vector<std::string>& keys) {
      std::this_thread::yield();
      std::lock_guard lock(mutex);
      for (const auto& k : keys) {
        records.erase(k);
      }
    };
    return s;
  }

  std::vector<json> of_kind(const std::string& kind, const std::string& model) {
    std::this_thread::yield();
    std::lock_guard lock(mutex);
    std::vector<json> out;
    for (const auto& [key, fields] : records) {
      if (fields.value("kind", "") == kind && (model.empty() || fields.value("model", "") == model)) {
        out.push_back(fields);
      }
    }
    return out;
  }

  size_t count_prefix(const std::string& prefix) {
    std::lock_guard lock(mutex);
    return static_cast<size_t>(
        std::count_if(records.begin(), records.end(), [&](const auto& r) { return r.first.starts_with(prefix); }));
  }
};

Checkpoint checkpoint(int64_t epoch, float fill) {
  Checkpoint c;
  c.model = "m";
  c.epoch = epoch;
  Array a(DType::f32, {4, 3});
  for (int i = 0; i < 12; ++i) {
    a.as<float>()[i] = fill + static_cast<float>(i);
  }
  c.arrays.emplace("parameters", a);
  c.metrics["loss"] = fill;
  return c;
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_SUITE("backends::chunked") {
  TEST_CASE("a second save of an epoch is a conflict that keeps the first; overwrite replaces it whole") {
    MemoryRecords mem;
    auto store = mem.store();
    backends::chunked::save(store, checkpoint(1, 0));
    const size_t chunks = mem.count_prefix("c:");
    CHECK(chunks > 1);
    CHECK_THROWS_WITH_AS(backends::chunked::save(store, checkpoint(1, 5)),
                         "memory: checkpoint \"m@1\" already exists (use --overwrite to replace it)", ConflictError);
    CHECK(backends::chunked::load(store, "m@1").metrics.at("loss") == 0);
    auto again = checkpoint(1, 7);
    again.overwrite = true;
    backends::chunked::save(store, again);
    const auto got = backends::chunked::load(store, "m@1");
    CHECK(got.metrics.at("loss") == 7);
    CHECK(got.arrays.at("parameters") == again.arrays.at("parameters"));
    CHECK(mem.count_prefix("c:") == chunks);  // the replaced chunks are gone
    CHECK(mem.count_prefix("k:") == 0);       // and no claim is left
  }

  TEST_CASE("of eight savers racing on a new epoch exactly one wins, in every round, and no claim is left") {
    MemoryRecords mem;
    constexpr int k_savers = 8;
    for (int64_t epoch = 0; epoch < 25; ++epoch) {
      CAPTURE(epoch);
      std::vector<std::string> outcome(k_savers);
      std::vector<std::thread> savers;
      for (int t = 0; t < k_savers; ++t) {
        savers.emplace_back([&, t] {
          auto store = mem.store();
          try {
            backends::chunked::save(store, checkpoint(epoch, static_cast<float>(t)));
            outcome[static_cast<size_t>(t)] = "won";
          } catch (const ConflictError&) {
            outcome[static_cast<size_t>(t)] = "conflict";
          } catch (const std::exception& e) {
            outcome[static_cast<size_t>(t)] = e.what();
          }
        });
      }
      for (auto& s : savers) {
        s.join();
      }
      REQUIRE(std::count(outcome.begin(), outcome.end(), "won") == 1);
      REQUIRE(std::count(outcome.begin(), outcome.end(), "conflict") == k_savers - 1);
      const auto winner = static_cast<float>(std::find(outcome.begin(), outcome.end(), "won") - outcome.begin());
      auto store = mem.store();
      CHECK(backends::chunked::load(store, "m@" + std::to_string(epoch)).metrics.at("loss") == winner);
      CHECK(mem.count_prefix("k:") == 0);
    }
  }

  TEST_CASE("a live claim with a lower ticket keeps a new saver out; one not renewed for ten minutes does not") {
    MemoryRecords mem;
    auto store = mem.store();
    const json claim = {{"kind", "claim"},    {"model", "m"}, {"epoch", 3},
                        {"token", "crashed"}, {"ticket", 1},  {"at", wall_ms()}};
    store.put({{"k:m@3:crashed", claim}});
    CHECK_THROWS_WITH_AS(backends::chunked::save(store, checkpoint(3, 1)),
                         "memory: checkpoint \"m@3\" is being saved by another process (use --overwrite to replace it)",
                         ConflictError);
    auto stale = claim;
    stale["at"] = wall_ms() - 11 * 60 * 1000;
    store.put({{"k:m@3:crashed", stale}});
    CHECK(backends::chunked::save(store, checkpoint(3, 1)) == "m@3");
    CHECK(backends::chunked::load(store, "m@latest").epoch == 3);
    CHECK(mem.count_prefix("k:") == 1);  // only the crashed saver's
  }
}

TEST_SUITE("backends::chunked::ChunkedCheckpoints") {
  TEST_CASE("the class is a CheckpointStore over the records: save, list, load latest, delete moves latest back") {
    MemoryRecords mem;
    backends::chunked::ChunkedCheckpoints owned(mem.store());
    backends::CheckpointStore& store = owned;
    CHECK(store.save_checkpoint(checkpoint(1, 1)) == "m@1");
    CHECK(store.save_checkpoint(checkpoint(2, 2)) == "m@2");
    CHECK_THROWS_AS(store.save_checkpoint(checkpoint(2, 9)), ConflictError);
    const auto all = store.list_checkpoints("m");
    REQUIRE(all.size() == 2);
    CHECK(!all[0].latest);
    CHECK(all[1].latest);
    CHECK(store.load_checkpoint("m@latest").arrays.at("parameters") == checkpoint(2, 2).arrays.at("parameters"));
    CHECK(store.delete_checkpoint("m@2"));
    CHECK(!store.delete_checkpoint("m@2"));
    CHECK(store.load_checkpoint("m@latest").epoch == 1);
    CHECK_THROWS_WITH_AS(store.load_checkpoint("m@2"), "memory: checkpoint \"m@2\" does not exist", NotFoundError);
  }
}
