// SPDX-License-Identifier: MIT
// The progress store of Qdrant and Pinecone over an in-memory record table: one record per
// (run, rank), replaced by the next report, listed by run then rank; older record forms
// (metrics as an object, numbers as doubles) still read.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "backends/common/recordprogress.hpp"
#include "src/errors.hpp"

using namespace vstash;
using vstash::backends::json;
using vstash::backends::ProgressRecord;

namespace {

struct MemoryProgress {
  std::map<std::string, json> records;
  int settled = 0;

  backends::records::ProgressRecords ops() {
    backends::records::ProgressRecords o;
    o.put = [this](const std::string& key, const json& fields) { records[key] = fields; };
    o.list = [this](const std::string&) {
      std::vector<json> out;
      for (const auto& [key, fields] : records) {
        out.push_back(fields);  // unfiltered: the store may return other runs
      }
      return out;
    };
    o.settle = [this] { ++settled; };
    return o;
  }
};

ProgressRecord report(const std::string& run, int64_t rank, int64_t step, double loss) {
  ProgressRecord r;
  r.run = run;
  r.rank = rank;
  r.epoch = 1;
  r.step = step;
  r.metrics["loss"] = loss;
  return r;
}

}  // namespace

TEST_SUITE("backends::records::RecordProgress") {
  TEST_CASE("a report replaces the rank's previous one; the list is by run then rank, filtered by run") {
    MemoryProgress mem;
    backends::records::RecordProgress progress(mem.ops());
    progress.record_progress(report("b", 1, 10, 0.5));
    progress.record_progress(report("a", 1, 10, 0.5));
    progress.record_progress(report("a", 0, 10, 0.5));
    progress.record_progress(report("a", 0, 20, 0.25));
    CHECK(mem.records.size() == 3);
    CHECK(mem.records.count("a#0") == 1);
    CHECK(mem.settled == 4);
    const auto a = progress.list_progress("a");
    REQUIRE(a.size() == 2);
    CHECK(a[0].rank == 0);
    CHECK(a[0].step == 20);
    CHECK(a[0].metrics.at("loss") == 0.25);
    CHECK(!a[0].updated_at.empty());
    CHECK(a[1].rank == 1);
    const auto all = progress.list_progress("");
    REQUIRE(all.size() == 3);
    CHECK(all[2].run == "b");
  }

  TEST_CASE("older records read: metrics as an object, numbers as doubles") {
    MemoryProgress mem;
    mem.records["r#2"] = json{{"run", "r"}, {"rank", 2.0}, {"epoch", 3.0}, {"step", 7}, {"metrics", {{"acc", 0.9}}}};
    backends::records::RecordProgress progress(mem.ops());
    const auto got = progress.list_progress("r");
    REQUIRE(got.size() == 1);
    CHECK(got[0].rank == 2);
    CHECK(got[0].epoch == 3);
    CHECK(got[0].step == 7);
    CHECK(got[0].metrics.at("acc") == 0.9);
  }

  TEST_CASE("an empty run name is bad input") {
    MemoryProgress mem;
    backends::records::RecordProgress progress(mem.ops());
    CHECK_THROWS_WITH_AS(progress.record_progress(report("", 0, 1, 1)), "progress: run name is empty", UsageError);
  }
}
