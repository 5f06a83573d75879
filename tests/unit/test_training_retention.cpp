// SPDX-License-Identifier: MIT
// Checkpoint retention: --keep N and --keep-best METRIC:min|max, planned and applied.
#include <doctest/doctest.h>
#include <limits>

#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/testutil.hpp"
#include "workflows/training/retention.hpp"

using namespace vstash;
using namespace vstash::training;
using backends::CheckpointInfo;

namespace {

CheckpointInfo info(int64_t epoch, std::map<std::string, double> metrics) {
  CheckpointInfo c;
  c.model = "m";
  c.epoch = epoch;
  c.path = backends::checkpoint_path("m", epoch);
  c.metrics = std::move(metrics);
  return c;
}

std::vector<int64_t> epochs(const std::vector<CheckpointInfo>& list) {
  std::vector<int64_t> out;
  for (const auto& c : list) {
    out.push_back(c.epoch);
  }
  return out;
}

// Losses 0.9, 0.5, 0.2 (best), 0.4, 0.6, 0.7 at epochs 0..5, listed out of order.
std::vector<CheckpointInfo> history() {
  return {info(3, {{"loss", 0.4}}), info(0, {{"loss", 0.9}}), info(1, {{"loss", 0.5}, {"acc", 0.8}}),
          info(2, {{"loss", 0.2}}), info(5, {{"loss", 0.7}}), info(4, {{"loss", 0.6}, {"acc", 0.8}})};
}

}  // namespace

TEST_SUITE("training::retention") {
  TEST_CASE("keep N keeps the N highest epochs") {
    const auto plan = plan_retention(history(), RetentionPolicy::parse(2, ""));
    CHECK(epochs(plan.keep) == std::vector<int64_t>{4, 5});
    CHECK(epochs(plan.remove) == std::vector<int64_t>{0, 1, 2, 3});
  }

  TEST_CASE("keep-best keeps the best by the metric in either direction") {
    CHECK(epochs(plan_retention(history(), RetentionPolicy::parse(2, "loss:min")).keep) ==
          std::vector<int64_t>{2, 4, 5});
    CHECK(epochs(plan_retention(history(), RetentionPolicy::parse(1, "loss:max")).keep) == std::vector<int64_t>{0, 5});
    // acc ties at epochs 1 and 4: the later one is kept.
    CHECK(epochs(plan_retention(history(), RetentionPolicy::parse(1, "acc:max")).keep) == std::vector<int64_t>{4, 5});
  }

  TEST_CASE("keep-best alone still keeps the latest") {
    const auto plan = plan_retention(history(), RetentionPolicy::parse(0, "loss:min"));
    CHECK(epochs(plan.keep) == std::vector<int64_t>{2, 5});
  }

  TEST_CASE("the latest survives even when it is neither recent enough nor best") {
    auto list = history();
    list.push_back(info(9, {}));
    const auto plan = plan_retention(list, RetentionPolicy::parse(1, "loss:min"));
    CHECK(epochs(plan.keep) == std::vector<int64_t>{2, 9});
  }

  TEST_CASE("missing and NaN metrics are never best") {
    std::vector<CheckpointInfo> list{info(0, {{"loss", std::numeric_limits<double>::quiet_NaN()}}), info(1, {}),
                                     info(2, {{"loss", 3.0}}), info(3, {})};
    CHECK(epochs(plan_retention(list, RetentionPolicy::parse(1, "loss:min")).keep) == std::vector<int64_t>{2, 3});
    CHECK(epochs(plan_retention(list, RetentionPolicy::parse(1, "nothing:min")).keep) == std::vector<int64_t>{3});
  }

  TEST_CASE("no policy deletes nothing and a large N keeps everything") {
    CHECK(plan_retention(history(), RetentionPolicy{}).remove.empty());
    CHECK(plan_retention(history(), RetentionPolicy::parse(50, "")).remove.empty());
    CHECK(plan_retention({}, RetentionPolicy::parse(1, "")).keep.empty());
  }

  TEST_CASE("malformed keep-best values are usage errors") {
    CHECK_THROWS_AS(RetentionPolicy::parse(1, "loss"), UsageError);
    CHECK_THROWS_AS(RetentionPolicy::parse(1, "loss:lowest"), UsageError);
    CHECK_THROWS_AS(RetentionPolicy::parse(1, ":min"), UsageError);
    const auto p = RetentionPolicy::parse(0, "val:acc:max");
    CHECK(*p.best_metric == "val:acc");
    CHECK(p.best_is_max);
    CHECK_FALSE(p.keep_last);
  }

  TEST_CASE("apply_retention deletes through the backend and latest stays loadable") {
    const auto dir = testutil::scratch_dir("retention");
    auto backend = backends::create_backend(Profile("t", "local", {{"path", (dir / "store.db").string()}}, "test"));
    for (const auto& c : history()) {
      backends::Checkpoint cp;
      cp.model = "m";
      cp.epoch = c.epoch;
      cp.metrics = c.metrics;
      cp.arrays["parameters"] = testutil::random_f32(4, 3, static_cast<uint32_t>(c.epoch));
      backend->checkpoints().save_checkpoint(cp);
    }
    backends::Checkpoint other;
    other.model = "other";
    other.epoch = 1;
    backend->checkpoints().save_checkpoint(other);

    const auto plan = apply_retention(*backend, "m", RetentionPolicy::parse(2, "loss:min"));
    CHECK(epochs(plan.remove) == std::vector<int64_t>{0, 1, 3});
    CHECK(epochs(backend->checkpoints().list_checkpoints("m")) == std::vector<int64_t>{2, 4, 5});
    CHECK(backend->checkpoints().load_checkpoint("m@latest").epoch == 5);
    CHECK(backend->checkpoints().load_checkpoint("m@2").arrays.at("parameters") == testutil::random_f32(4, 3, 2));
    CHECK(backend->checkpoints().list_checkpoints("other").size() == 1);
    // Applying again changes nothing.
    CHECK(apply_retention(*backend, "m", RetentionPolicy::parse(2, "loss:min")).remove.empty());
  }
}
