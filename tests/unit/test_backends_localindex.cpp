// SPDX-License-Identifier: MIT
// The local HNSW index: recall against the exact top-k on random rows for every metric,
// scores equal to exact_score (the contract's), ties by index, a filter that drops rows,
// save + load giving the same answers, a damaged file refused, and the store record that
// says which dataset version an index covers (stale once the version moves).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "backends/local/localindex.hpp"
#include "tests/testutil.hpp"

using namespace vstash;
using namespace vstash::backends;
using namespace vstash::backends::local;

namespace {

constexpr size_t k_dim = 16;

// n random rows with indices 10, 13, 16, ... (not positions: the index keys rows by index).
struct Rows {
  std::vector<float> values;
  std::vector<int64_t> indices;
};
Rows make_rows(int64_t n, uint32_t seed) {
  const Array a = testutil::random_f32(n, static_cast<int64_t>(k_dim), seed);
  const auto* p = reinterpret_cast<const float*>(a.data());
  Rows r{{p, p + n * static_cast<int64_t>(k_dim)}, {}};
  for (int64_t i = 0; i < n; ++i) {
    r.indices.push_back(10 + 3 * i);
  }
  return r;
}

std::unique_ptr<LocalIndex> build(Metric metric, const Rows& rows, size_t block = 100) {
  size_t at = 0;
  auto source = [&](std::vector<int64_t>& idx, std::vector<float>& values) -> size_t {
    const size_t n = std::min(block, rows.indices.size() - at);
    idx.assign(rows.indices.begin() + static_cast<std::ptrdiff_t>(at),
               rows.indices.begin() + static_cast<std::ptrdiff_t>(at + n));
    values.assign(rows.values.begin() + static_cast<std::ptrdiff_t>(at * k_dim),
                  rows.values.begin() + static_cast<std::ptrdiff_t>((at + n) * k_dim));
    at += n;
    return n;
  };
  HnswParams p;
  p.m = 12;
  p.ef_construction = 100;
  return LocalIndex::build(metric, k_dim, rows.indices.size(), p, source, {});
}

std::vector<TopK::Entry> exact(Metric metric, const Rows& rows, const float* q, size_t k) {
  TopK top(metric, k);
  for (size_t i = 0; i < rows.indices.size(); ++i) {
    top.offer(exact_score(metric, q, &rows.values[i * k_dim], k_dim), rows.indices[i], 0);
  }
  return top.take_sorted();
}

}  // namespace

TEST_SUITE("backends::local::LocalIndex") {
  TEST_CASE("search finds at least 95% of the exact top 10 and scores them exactly, for every metric") {
    const Rows rows = make_rows(3000, 7);
    const Rows queries = make_rows(50, 99);
    for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
      CAPTURE(metric_name(metric));
      const auto index = build(metric, rows);
      REQUIRE(index->size() == rows.indices.size());
      size_t found = 0;
      for (size_t q = 0; q < 50; ++q) {
        const float* query = &queries.values[q * k_dim];
        const auto got = index->search(query, 10, 64);
        const auto want = exact(metric, rows, query, 10);
        REQUIRE(got.size() == 10);
        std::set<int64_t> truth;
        for (const auto& e : want) {
          truth.insert(e.index);
        }
        for (size_t i = 0; i < got.size(); ++i) {
          found += truth.count(got[i].index);
          const auto pos = static_cast<size_t>((got[i].index - 10) / 3);
          CHECK(got[i].score == exact_score(metric, query, &rows.values[pos * k_dim], k_dim));
          if (i > 0) {
            CHECK(!ranks_before(metric, got[i].score, got[i - 1].score));
          }
        }
      }
      CHECK(static_cast<double>(found) / 500.0 >= 0.95);
    }
  }

  TEST_CASE("equal rows come back by ascending index") {
    Rows rows = make_rows(200, 3);
    for (size_t i = 0; i < k_dim; ++i) {
      rows.values[50 * k_dim + i] = rows.values[20 * k_dim + i];
      rows.values[150 * k_dim + i] = rows.values[20 * k_dim + i];
    }
    const auto index = build(Metric::euclidean, rows);
    const auto got = index->search(&rows.values[150 * k_dim], 3, 50);
    REQUIRE(got.size() == 3);
    CHECK(got[0].index == rows.indices[20]);
    CHECK(got[1].index == rows.indices[50]);
    CHECK(got[2].index == rows.indices[150]);
    CHECK(got[0].score == 0.0);
  }

  TEST_CASE("keep drops rows before the k are chosen") {
    const Rows rows = make_rows(1000, 5);
    const auto index = build(Metric::cosine, rows);
    auto even = [](int64_t i) { return i % 2 == 0; };
    const auto got = index->search(&rows.values[0], 10, 200, even);
    REQUIRE(got.size() == 10);
    for (const auto& e : got) {
      CHECK(even(e.index));
    }
  }

  TEST_CASE("a saved index loads and answers the same; a truncated file is refused") {
    const auto dir = testutil::scratch_dir("localindex");
    const Rows rows = make_rows(500, 11);
    const auto index = build(Metric::dot, rows);
    const std::string path = (dir / "1.hnsw").string();
    const int64_t bytes = index->save(path);
    CHECK(bytes == static_cast<int64_t>(std::filesystem::file_size(path)));
    const auto loaded = LocalIndex::load(path, Metric::dot, k_dim, 500);
    for (size_t q = 0; q < 20; ++q) {
      const auto a = index->search(&rows.values[q * k_dim], 5, 40);
      const auto b = loaded->search(&rows.values[q * k_dim], 5, 40);
      REQUIRE(a.size() == b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].index == b[i].index);
        CHECK(a[i].score == b[i].score);
      }
    }
    CHECK(loaded->values(rows.indices[3]) == std::vector<float>(&rows.values[3 * k_dim], &rows.values[4 * k_dim]));
    CHECK_THROWS_AS(LocalIndex::load(path, Metric::dot, k_dim, 501), Error);
    std::filesystem::resize_file(path, static_cast<uintmax_t>(bytes / 2));
    CHECK_THROWS_AS(LocalIndex::load(path, Metric::dot, k_dim, 500), Error);
  }

  TEST_CASE("a file whose links point past the graph, or whose link lists are torn, is refused") {
    const auto dir = testutil::scratch_dir("localindex-damaged");
    const Rows rows = make_rows(500, 13);
    const std::string path = (dir / "1.hnsw").string();
    const auto bytes = static_cast<size_t>(build(Metric::euclidean, rows)->save(path));
    std::vector<char> good(bytes);
    std::ifstream(path, std::ios::binary).read(good.data(), static_cast<std::streamsize>(bytes));
    auto load_with = [&](size_t offset, uint32_t value) {
      std::vector<char> damaged = good;
      std::memcpy(&damaged[offset], &value, sizeof value);
      std::ofstream(path, std::ios::binary | std::ios::trunc)
          .write(damaged.data(), static_cast<std::streamsize>(bytes));
      return LocalIndex::load(path, Metric::euclidean, k_dim, 500);
    };
    // hnswlib's header is 96 bytes; node 0's level-0 list follows: a count, then its links.
    CHECK_NOTHROW(load_with(96 + 4, 1));
    CHECK_THROWS_WITH_AS(load_with(96 + 4, 500), doctest::Contains("damaged"), Error);
    CHECK_THROWS_WITH_AS(load_with(96, 0xffff), doctest::Contains("damaged"), Error);
    // Node 0's upper-level list size (the 4 bytes after level 0) made 3: no whole number of lists.
    const size_t element = (2 * 12 + 1) * 4 + k_dim * 4 + 8;
    CHECK_THROWS_WITH_AS(load_with(96 + 500 * element, 3), doctest::Contains("damaged"), Error);
  }

  TEST_CASE("the store record names the version an index covers; a newer version reads stale") {
    const auto dir = testutil::scratch_dir("localindex-record");
    Connection conn((dir / "store.db").string());
    CHECK_FALSE(find_index_record(conn, 1).has_value());
    IndexRecord r;
    r.version = 7;
    r.rows = 60000;
    r.file = index_file_name(1);
    r.bytes = 123;
    r.m = 16;
    r.ef_construction = 200;
    save_index_record(conn, 1, r);
    const auto got = find_index_record(conn, 1);
    REQUIRE(got.has_value());
    CHECK(got->version == 7);
    CHECK(got->file == "1.hnsw");
    DatasetRecord ds;
    ds.id = 1;
    // Move-assigned: GCC 12's -Wrestrict misfires on assigning this literal here (-O2, -Werror).
    ds.spec.name = std::string(1, 'd');
    ds.row_count = 60000;
    ds.version = 7;
    CHECK(describe_index(got, ds, HnswParams{}).find("stale") == std::string::npos);
    ds.version = 8;
    CHECK(describe_index(got, ds, HnswParams{}).find("stale") != std::string::npos);
    delete_index_record(conn, 1);
    CHECK_FALSE(find_index_record(conn, 1).has_value());
  }

  TEST_CASE("search breadth: hnsw_ef_search for k <= 10, scaled by k / 10 above; --ef as given, at least k") {
    HnswParams p;
    p.ef_search = 64;
    CHECK(search_breadth(std::nullopt, p, 1) == 64);
    CHECK(search_breadth(std::nullopt, p, 10) == 64);
    CHECK(search_breadth(std::nullopt, p, 11) == 71);
    CHECK(search_breadth(std::nullopt, p, 100) == 640);
    p.ef_search = 1;
    CHECK(search_breadth(std::nullopt, p, 100) == 100);
    CHECK(search_breadth(32, p, 10) == 32);
    CHECK(search_breadth(32, p, 100) == 100);
    CHECK(search_breadth(0, p, 5) == 5);
  }

  TEST_CASE("hnsw profile keys out of range are refused naming the key") {
    const Profile ok("p", "local", json{{"hnsw_m", 32}, {"hnsw_ef_search", 200}}, "test");
    CHECK(hnsw_params(ok).m == 32);
    CHECK(hnsw_params(ok).ef_search == 200);
    CHECK(hnsw_params(ok).min_rows == 50000);
    const Profile bad("p", "local", json{{"hnsw_m", 0}}, "test");
    CHECK_THROWS_WITH_AS(hnsw_params(bad), doctest::Contains("hnsw_m"), UsageError);
  }
}
