// SPDX-License-Identifier: MIT
// Contract: checkpoints (save, load, latest, list, delete) and training progress.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "src/errors.hpp"
#include "tests/contract/contract.hpp"
#include "tests/testutil.hpp"

using namespace vstash;
using namespace vstash::contract;
using vstash::backends::Checkpoint;
using vstash::backends::ProgressRecord;

namespace {

Checkpoint make_checkpoint(const std::string& model, int64_t epoch, uint32_t seed) {
  Checkpoint cp;
  cp.model = model;
  cp.epoch = epoch;
  cp.arrays["parameters"] = sample_array(DType::f32, {3, 4}, seed);
  cp.arrays["optimizer/m"] = sample_array(DType::f64, {2, 2, 2}, seed + 1);
  cp.arrays["step"] = sample_array(DType::i64, {}, seed + 2);
  cp.arrays["mask"] = sample_array(DType::b1, {5}, seed + 3);
  cp.arrays["half"] = sample_array(DType::f16, {3}, seed + 4);
  cp.arrays["counts"] = sample_array(DType::u8, {4}, seed + 5);
  cp.metrics = {{"loss", 0.25 * static_cast<double>(epoch)}, {"accuracy", 0.9}};
  cp.metadata = {{"arch", "vqc"}, {"layers", {1, 2}}, {"note", "ünïcødé"}};
  return cp;
}

// Deletes every checkpoint of the model when the test ends.
struct ModelCleanup {
  backends::Backend& backend;
  std::string model;
  ~ModelCleanup() {
    try {
      for (const auto& c : backend.checkpoints().list_checkpoints(model)) {
        backend.checkpoints().delete_checkpoint(c.path);
      }
    } catch (const std::exception& e) {
      MESSAGE("could not delete checkpoints of " << model << ": " << e.what());
    }
  }
};

}  // namespace

TEST_SUITE("contract::Checkpoints") {
  TEST_CASE("a saved checkpoint loads back with exact arrays, epoch, metrics and metadata") {
    auto b = make_contract_backend();
    const auto model = testutil::unique_name("model");
    ModelCleanup cleanup{*b, model};
    const auto cp = make_checkpoint(model, 4, 50);
    CHECK(b->checkpoints().save_checkpoint(cp) == model + "@4");
    for (const auto& ref : {model + "@4", model + "@latest"}) {
      CAPTURE(ref);
      const auto got = b->checkpoints().load_checkpoint(ref);
      CHECK(got.model == model);
      CHECK(got.epoch == 4);
      CHECK(got.metrics == cp.metrics);
      CHECK(got.metadata == cp.metadata);
      CHECK_FALSE(got.created_at.empty());
      REQUIRE(got.arrays.size() == cp.arrays.size());
      for (const auto& [name, array] : cp.arrays) {
        CAPTURE(name);
        REQUIRE(got.arrays.count(name) == 1);
        CHECK(got.arrays.at(name) == array);
      }
    }
  }

  TEST_CASE("latest only moves forward, re-saving an epoch with overwrite replaces it, and list marks latest") {
    auto b = make_contract_backend();
    const auto model = testutil::unique_name("model");
    ModelCleanup cleanup{*b, model};
    b->checkpoints().save_checkpoint(make_checkpoint(model, 5, 60));
    b->checkpoints().save_checkpoint(make_checkpoint(model, 3, 61));
    CHECK(b->checkpoints().load_checkpoint(model + "@latest").epoch == 5);

    auto replacement = make_checkpoint(model, 3, 62);
    replacement.overwrite = true;
    replacement.metrics["loss"] = 9.5;
    b->checkpoints().save_checkpoint(replacement);
    const auto replaced = b->checkpoints().load_checkpoint(model + "@3");
    CHECK(replaced.arrays.at("parameters") == replacement.arrays.at("parameters"));
    CHECK(replaced.metrics.at("loss") == 9.5);

    const auto list = b->checkpoints().list_checkpoints(model);
    REQUIRE(list.size() == 2);
    CHECK(list[0].epoch == 3);
    CHECK(list[0].path == model + "@3");
    CHECK_FALSE(list[0].latest);
    CHECK(list[1].epoch == 5);
    CHECK(list[1].latest);
    CHECK(list[1].metrics.at("loss") == doctest::Approx(1.25));
    CHECK(list[1].model == model);
  }

  TEST_CASE("re-saving an epoch without overwrite is a conflict that leaves the saved one whole") {
    auto b = make_contract_backend();
    const auto model = testutil::unique_name("model");
    ModelCleanup cleanup{*b, model};
    const auto first = make_checkpoint(model, 2, 63);
    b->checkpoints().save_checkpoint(first);
    b->checkpoints().save_checkpoint(make_checkpoint(model, 4, 64));
    auto second = make_checkpoint(model, 2, 65);
    second.metrics = {{"loss", 7.0}};
    second.metadata = {{"arch", "other"}};
    second.arrays.erase("mask");
    try {
      b->checkpoints().save_checkpoint(second);
      FAIL("saving " << model << "@2 again did not throw");
    } catch (const ConflictError& e) {
      const std::string text = e.what();
      CHECK_MESSAGE(text.find("checkpoint \"" + model + "@2\" already exists") != std::string::npos, text);
      CHECK_MESSAGE(text.find("--overwrite") != std::string::npos, text);
    }
    const auto got = b->checkpoints().load_checkpoint(model + "@2");
    CHECK(got.metrics == first.metrics);
    CHECK(got.metadata == first.metadata);
    CHECK(got.arrays == first.arrays);
    const auto list = b->checkpoints().list_checkpoints(model);
    REQUIRE(list.size() == 2);
    CHECK(list[0].metrics == first.metrics);
    CHECK(list[1].latest);
    CHECK(b->checkpoints().load_checkpoint(model + "@latest").epoch == 4);
  }

  TEST_CASE("of four clients saving the same new epoch at once, exactly one wins and the rest conflict") {
    // Separate connections, as separate training processes would have; three rounds, each on
    // a new epoch, so the race is run more than once.
    auto b = make_contract_backend();
    const auto model = testutil::unique_name("model");
    ModelCleanup cleanup{*b, model};
    constexpr int k_clients = 4;
    std::vector<std::unique_ptr<backends::Backend>> backends_of;
    for (int t = 0; t < k_clients; ++t) {
      backends_of.push_back(make_contract_backend());
    }
    for (int64_t epoch : {1, 2, 3}) {
      CAPTURE(epoch);
      std::vector<std::string> outcome(k_clients);
      std::vector<std::thread> clients;
      for (int t = 0; t < k_clients; ++t) {
        clients.emplace_back([&, t] {
          const auto slot = static_cast<size_t>(t);
          try {
            backends_of[slot]->checkpoints().save_checkpoint(
                make_checkpoint(model, epoch, static_cast<uint32_t>(200 + t)));
            outcome[slot] = "won";
          } catch (const ConflictError&) {
            outcome[slot] = "conflict";
          } catch (const std::exception& e) {
            outcome[slot] = e.what();
          }
        });
      }
      for (auto& c : clients) {
        c.join();
      }
      REQUIRE_MESSAGE(std::count(outcome.begin(), outcome.end(), "won") == 1,
                      outcome[0] << " | " << outcome[1] << " | " << outcome[2] << " | " << outcome[3]);
      CHECK(std::count(outcome.begin(), outcome.end(), "conflict") == k_clients - 1);
      const auto winner = static_cast<uint32_t>(std::find(outcome.begin(), outcome.end(), "won") - outcome.begin());
      const auto got = b->checkpoints().load_checkpoint(model + "@" + std::to_string(epoch));
      CHECK(got.arrays == make_checkpoint(model, epoch, 200 + winner).arrays);
      CHECK(b->checkpoints().load_checkpoint(model + "@latest").epoch == epoch);
    }
    CHECK(b->checkpoints().list_checkpoints(model).size() == 3);
  }

  TEST_CASE("deleting the latest checkpoint moves latest to the next lower epoch") {
    auto b = make_contract_backend();
    const auto model = testutil::unique_name("model");
    ModelCleanup cleanup{*b, model};
    for (int64_t e : {1, 2, 7}) {
      b->checkpoints().save_checkpoint(make_checkpoint(model, e, 70));
    }
    CHECK(b->checkpoints().delete_checkpoint(model + "@7"));
    CHECK_FALSE(b->checkpoints().delete_checkpoint(model + "@7"));
    CHECK(b->checkpoints().load_checkpoint(model + "@latest").epoch == 2);
    CHECK(b->checkpoints().delete_checkpoint(model + "@1"));
    CHECK(b->checkpoints().load_checkpoint(model + "@latest").epoch == 2);
    const auto list = b->checkpoints().list_checkpoints(model);
    REQUIRE(list.size() == 1);
    CHECK(list[0].latest);
  }

  TEST_CASE("four clients saving at once leave every checkpoint whole and latest at the highest epoch") {
    // Each client has its own connection, as separate training processes would; client t
    // saves epochs t, t+4, t+8 from the highest down, so every save after a client's first
    // races against a higher latest and must not move it back (compare-and-set).
    auto b = make_contract_backend();
    const auto model = testutil::unique_name("model");
    ModelCleanup cleanup{*b, model};
    constexpr int k_clients = 4;
    std::vector<std::string> errors(k_clients);
    std::vector<std::thread> clients;
    for (int t = 0; t < k_clients; ++t) {
      clients.emplace_back([&, t] {
        try {
          auto mine = make_contract_backend();
          for (int64_t e : {t + 8, t + 4, t}) {
            mine->checkpoints().save_checkpoint(make_checkpoint(model, e, static_cast<uint32_t>(100 + e)));
          }
        } catch (const std::exception& e) {
          errors[static_cast<size_t>(t)] = e.what();
        }
      });
    }
    for (auto& c : clients) {
      c.join();
    }
    for (const auto& e : errors) {
      CHECK_MESSAGE(e.empty(), e);
    }
    CHECK(b->checkpoints().load_checkpoint(model + "@latest").epoch == 11);
    const auto list = b->checkpoints().list_checkpoints(model);
    REQUIRE(list.size() == 12);
    for (const auto& info : list) {
      CAPTURE(info.path);
      const auto got = b->checkpoints().load_checkpoint(info.path);
      const auto want = make_checkpoint(model, info.epoch, static_cast<uint32_t>(100 + info.epoch));
      CHECK(got.arrays.at("parameters") == want.arrays.at("parameters"));
      CHECK(got.arrays.at("optimizer/m") == want.arrays.at("optimizer/m"));
      CHECK(info.latest == (info.epoch == 11));
    }
  }

  TEST_CASE("a NaN or infinite metric (a diverged run) comes back as NaN in load and list") {
    auto b = make_contract_backend();
    const auto model = testutil::unique_name("model");
    ModelCleanup cleanup{*b, model};
    auto cp = make_checkpoint(model, 2, 20);
    cp.metrics["loss"] = std::numeric_limits<double>::quiet_NaN();
    cp.metrics["grad_norm"] = std::numeric_limits<double>::infinity();
    b->checkpoints().save_checkpoint(cp);
    const auto got = b->checkpoints().load_checkpoint(model + "@2");
    REQUIRE(got.metrics.size() == 3);
    CHECK(std::isnan(got.metrics.at("loss")));
    CHECK(std::isnan(got.metrics.at("grad_norm")));  // JSON has no infinity: stored as null
    CHECK(got.metrics.at("accuracy") == 0.9);
    const auto listed = b->checkpoints().list_checkpoints(model);
    REQUIRE(listed.size() == 1);
    CHECK(std::isnan(listed[0].metrics.at("loss")));
    CHECK(got.arrays == cp.arrays);
  }

  TEST_CASE("loading a missing checkpoint throws NotFoundError") {
    auto b = make_contract_backend();
    const auto model = testutil::unique_name("model");
    ModelCleanup cleanup{*b, model};
    CHECK_THROWS_AS(b->checkpoints().load_checkpoint(model + "@latest"), NotFoundError);
    b->checkpoints().save_checkpoint(make_checkpoint(model, 1, 80));
    CHECK_THROWS_AS(b->checkpoints().load_checkpoint(model + "@99"), NotFoundError);
    CHECK(b->checkpoints().list_checkpoints(testutil::unique_name("model")).empty());
  }
}

TEST_SUITE("contract::Progress") {
  TEST_CASE("progress keeps the latest record per run and rank") {
    auto b = make_contract_backend();
    const auto run = testutil::unique_name("run");
    b->progress().record_progress({run, 0, 1, 10, {{"loss", 1.0}}, ""});
    b->progress().record_progress({run, 0, 2, 20, {{"loss", 0.5}}, ""});
    b->progress().record_progress({run, 1, 1, 12, {{"loss", 0.9}}, ""});
    auto list = b->progress().list_progress(run);
    std::sort(list.begin(), list.end(), [](const auto& x, const auto& y) { return x.rank < y.rank; });
    REQUIRE(list.size() == 2);
    CHECK(list[0].run == run);
    CHECK(list[0].rank == 0);
    CHECK(list[0].epoch == 2);
    CHECK(list[0].step == 20);
    CHECK(list[0].metrics.at("loss") == doctest::Approx(0.5));
    CHECK_FALSE(list[0].updated_at.empty());
    CHECK(list[1].rank == 1);
    CHECK(list[1].step == 12);
    const auto everything = b->progress().list_progress("");
    CHECK(std::count_if(everything.begin(), everything.end(), [&](const auto& r) { return r.run == run; }) == 2);
  }
}
