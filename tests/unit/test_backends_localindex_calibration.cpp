// SPDX-License-Identifier: MIT
// Calibration of the local HNSW index (backends/local/localcalibration.cpp): the smallest
// breadth of the ladder whose recall@10 on sampled rows reaches the target, with the
// estimate equal to the recall measured at that breadth; a target no breadth reaches, or a
// breadth that costs more than rows / k_cost_fraction links, marks the index not used; the
// record keeps the calibration only for the graph file it measured; hnsw_target_recall is
// checked.
#include <doctest/doctest.h>

#include <algorithm>

#include "backends/local/localindex.hpp"
#include "tests/testutil.hpp"

using namespace vstash;
using namespace vstash::backends;
using namespace vstash::backends::local;

namespace {

constexpr size_t k_dim = 16;

struct Fixture {
  std::vector<float> values;
  std::vector<float> queries;  // 100 fresh rows, not in the graph
  std::unique_ptr<LocalIndex> index;
  int exact_calls = 0;

  explicit Fixture(int64_t rows) {
    const Array a = testutil::random_f32(rows, static_cast<int64_t>(k_dim), 5);
    const auto* p = reinterpret_cast<const float*>(a.data());
    values.assign(p, p + rows * static_cast<int64_t>(k_dim));
    const Array q = testutil::random_f32(100, static_cast<int64_t>(k_dim), 6);
    queries.assign(reinterpret_cast<const float*>(q.data()), reinterpret_cast<const float*>(q.data()) + 100 * k_dim);
    bool given = false;
    auto source = [&](std::vector<int64_t>& idx, std::vector<float>& v) -> size_t {
      if (given) {
        return 0;
      }
      given = true;
      idx.resize(static_cast<size_t>(rows));
      for (size_t i = 0; i < idx.size(); ++i) {
        idx[i] = static_cast<int64_t>(i);
      }
      v = values;
      return idx.size();
    };
    HnswParams params;
    params.m = 8;
    params.ef_construction = 64;
    index = LocalIndex::build(Metric::euclidean, k_dim, static_cast<size_t>(rows), params, source, {});
  }

  // Brute force, the role the block scan plays in a build.
  ExactTop exact() {
    return [this](const std::vector<float>& q, size_t n, size_t k) {
      ++exact_calls;
      std::vector<std::vector<int64_t>> out(n);
      for (size_t i = 0; i < n; ++i) {
        TopK top(Metric::euclidean, k);
        for (size_t r = 0; r < values.size() / k_dim; ++r) {
          top.offer(exact_score(Metric::euclidean, &q[i * k_dim], &values[r * k_dim], k_dim), static_cast<int64_t>(r),
                    0);
        }
        for (const auto& e : top.take_sorted()) {
          out[i].push_back(e.index);
        }
      }
      return out;
    };
  }
};

}  // namespace

TEST_SUITE("backends::local::calibrate") {
  TEST_CASE("the smallest breadth of the ladder that reaches the target is chosen, its estimate being that recall") {
    Fixture f(4000);
    // A target between the recalls at 16 and at 256 (random rows in 16-d: well apart).
    const auto narrow = calibrate(*f.index, f.queries, {}, 1.0, {16}, 1e9, f.exact(), {});
    const auto wide = calibrate(*f.index, f.queries, {}, 1.0, {256}, 1e9, f.exact(), {});
    REQUIRE(narrow.recall < wide.recall);
    CHECK(narrow.sample == 100);
    CHECK(narrow.links > 0);
    CHECK(narrow.links < wide.links);
    const double target = (narrow.recall + wide.recall) / 2;
    const auto c = calibrate(*f.index, f.queries, {}, target, {16, 256}, 1e9, f.exact(), {});
    CHECK(c.ef == 256);
    CHECK(c.recall == doctest::Approx(wide.recall));
    CHECK(c.links == doctest::Approx(wide.links));
    CHECK(c.target == target);
    CHECK(c.used);
    // Reached at the first step: the ladder stops there.
    const auto low = calibrate(*f.index, f.queries, {}, narrow.recall, {16, 256}, 1e9, f.exact(), {});
    CHECK(low.ef == 16);
    CHECK(low.tried_ef == 16);
  }

  TEST_CASE("a target no breadth reaches marks the index not used, and says why") {
    Fixture f(4000);
    std::vector<IndexProgress> seen;
    const auto c = calibrate(*f.index, f.queries, {}, 1.0, {16}, 1e9, f.exact(),
                             [&](const IndexProgress& p) { seen.push_back(p); });
    REQUIRE(c.recall < 1.0);
    CHECK(c.ef == 0);
    CHECK_FALSE(c.used);
    CHECK(c.tried_ef == 16);
    CHECK(f.exact_calls == 1);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].phase == "building index: calibrating");
    const auto text = describe_calibration(c, 4000);
    CHECK(text.find("not used") != std::string::npos);
    CHECK(text.find("queries scan exactly") != std::string::npos);
  }

  TEST_CASE(
      "a breadth that examines more than rows / k_cost_fraction links is not used, though it reaches the target") {
    Fixture f(1000);
    const auto c = calibrate(*f.index, f.queries, {}, 0.01, {16, 32}, 1000.0 / k_cost_fraction, f.exact(), {});
    CHECK(c.ef == 16);
    CHECK(c.tried_ef == 16);
    REQUIRE(c.links > 1000.0 / k_cost_fraction);
    CHECK_FALSE(c.used);
    CHECK(describe_calibration(c, 1000).find("more than rows / 20 = 50") != std::string::npos);
  }

  TEST_CASE("a build holds the sampled rows out of the graph while calibrating, then inserts them") {
    CHECK(calibration_positions(50).size() == 5);
    const auto positions = calibration_positions(4000);
    REQUIRE(positions.size() == 200);
    CHECK(positions == calibration_positions(4000));
    CHECK(std::is_sorted(positions.begin(), positions.end()));
    CHECK(std::adjacent_find(positions.begin(), positions.end()) == positions.end());
    CHECK(positions.back() < 4000);
    Fixture f(100);  // for its brute force
    const Array a = testutil::random_f32(4000, static_cast<int64_t>(k_dim), 9);
    const auto* p = reinterpret_cast<const float*>(a.data());
    f.values.assign(p, p + 4000 * k_dim);
    size_t at = 0;
    auto source = [&](std::vector<int64_t>& idx, std::vector<float>& v) -> size_t {
      const size_t n = std::min<size_t>(300, 4000 - at);  // blocks that split the held positions
      idx.resize(n);
      for (size_t i = 0; i < n; ++i) {
        idx[i] = static_cast<int64_t>(at + i);
      }
      v.assign(f.values.begin() + static_cast<std::ptrdiff_t>(at * k_dim),
               f.values.begin() + static_cast<std::ptrdiff_t>((at + n) * k_dim));
      at += n;
      return n;
    };
    LocalIndex::HoldOut hold_out;
    hold_out.positions = positions;
    Calibration c;
    size_t graph_rows = 0;
    hold_out.before = [&](const LocalIndex& graph, const std::vector<int64_t>& held, const std::vector<float>& rows) {
      graph_rows = graph.size();
      REQUIRE(held.size() == positions.size());
      for (size_t i = 0; i < held.size(); ++i) {
        CHECK(held[i] == static_cast<int64_t>(positions[i]));
        CHECK(std::equal(rows.begin() + static_cast<std::ptrdiff_t>(i * k_dim),
                         rows.begin() + static_cast<std::ptrdiff_t>((i + 1) * k_dim),
                         f.values.begin() + static_cast<std::ptrdiff_t>(positions[i] * k_dim)));
      }
      // Each held row would be its own nearest neighbour: the exact answers leave held rows out.
      c = calibrate(graph, rows, held, 0.5, {64}, 1e9, f.exact(), {});
    };
    HnswParams params;
    params.m = 8;
    params.ef_construction = 64;
    const auto index = LocalIndex::build(Metric::euclidean, k_dim, 4000, params, source, {}, &hold_out);
    CHECK(graph_rows == 3800);
    CHECK(index->size() == 4000);
    CHECK(c.recall >= 0.5);
    CHECK(c.recall < 1.0);
    for (const size_t pos : positions) {
      const auto hits = index->search(&f.values[pos * k_dim], 1, 32);
      REQUIRE(hits.size() == 1);
      CHECK(hits[0].index == static_cast<int64_t>(pos));
    }
  }

  TEST_CASE("the record keeps a calibration for the file it measured; stats describe it") {
    const auto dir = testutil::scratch_dir("localindex-calibration");
    Connection conn((dir / "store.db").string());
    IndexRecord r;
    r.version = 3;
    r.rows = 60000;
    r.file = index_file_name(1);
    r.bytes = 999;
    r.m = 16;
    r.ef_construction = 200;
    Calibration c;
    c.ef = 48;
    c.recall = 0.9625;
    c.tried_ef = 48;
    c.sample = 200;
    c.links = 1234;
    c.target = 0.95;
    c.used = true;
    r.calibration = c;
    save_index_record(conn, 1, r);
    auto got = find_index_record(conn, 1);
    REQUIRE(got.has_value());
    REQUIRE(got->calibration.has_value());
    CHECK(got->calibration->ef == 48);
    CHECK(got->calibration->recall == doctest::Approx(0.9625));
    CHECK(got->calibration->links == 1234);
    CHECK(got->calibration->target == doctest::Approx(0.95));
    CHECK(got->calibration->used);
    DatasetRecord ds;
    ds.id = 1;
    ds.spec.name = std::string(1, 'd');
    ds.row_count = 60000;
    ds.version = 3;
    CHECK(describe_index(got, ds, HnswParams{}).find("estimated recall@10 0.963 at ef 48 on 200 sampled rows") !=
          std::string::npos);
    HnswParams fixed;
    fixed.ef_search_set = true;
    CHECK(describe_index(got, ds, fixed).find("ef 64 (hnsw_ef_search set in the profile)") != std::string::npos);
    // Another file under the same record (a build by a binary without calibration): none.
    conn.prepare("UPDATE hnsw_index SET bytes = 1000 WHERE dataset_id = 1").run();
    got = find_index_record(conn, 1);
    REQUIRE(got.has_value());
    CHECK_FALSE(got->calibration.has_value());
    CHECK(describe_index(got, ds, HnswParams{}).find("not calibrated") != std::string::npos);
    delete_index_record(conn, 1);
    CHECK_FALSE(find_index_record(conn, 1).has_value());
  }

  TEST_CASE("hnsw_target_recall must be a number in (0, 1]") {
    CHECK(hnsw_params(Profile("p", "local", json::object(), "test")).target_recall == 0.95);
    CHECK_FALSE(hnsw_params(Profile("p", "local", json::object(), "test")).ef_search_set);
    CHECK(hnsw_params(Profile("p", "local", json{{"hnsw_ef_search", 64}}, "test")).ef_search_set);
    CHECK(hnsw_params(Profile("p", "local", json{{"hnsw_target_recall", 1}}, "test")).target_recall == 1.0);
    for (const double bad : {0.0, -0.5, 1.5}) {
      CAPTURE(bad);
      CHECK_THROWS_WITH_AS(hnsw_params(Profile("p", "local", json{{"hnsw_target_recall", bad}}, "test")),
                           doctest::Contains("key \"hnsw_target_recall\" must be in (0, 1]"), UsageError);
    }
    CHECK_THROWS_WITH_AS(parse_profile_text("profiles:\n  p:\n    type: local\n    hnsw_target_recall: x\n", "v.yaml"),
                         doctest::Contains("hnsw_target_recall"), UsageError);
  }
}
