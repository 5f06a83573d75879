// SPDX-License-Identifier: MIT
// The sgemm block scan equals the exact scan (exact_score + TopK) bit for bit: same rows, same
// scores, same tie order, for every metric, k from 1 past the row count, blocks not full,
// exact ties, near-ties one float step apart, zero vectors and huge values.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "backends/common/blockscan.hpp"

using namespace vstash::backends;

namespace {

struct Case {
  size_t dim;
  std::vector<float> rows;
  std::vector<int64_t> indices;
  std::vector<float> queries;
  size_t n() const { return indices.size(); }
  size_t nq() const { return queries.size() / dim; }
};

// The old scan: every row through exact_score and one TopK per query.
std::vector<std::vector<TopK::Entry>> brute(Metric metric, const Case& c, size_t k) {
  std::vector<std::vector<TopK::Entry>> out;
  for (size_t q = 0; q < c.nq(); ++q) {
    TopK top(metric, k);
    for (size_t r = 0; r < c.n(); ++r) {
      top.offer(exact_score(metric, c.queries.data() + q * c.dim, c.rows.data() + r * c.dim, c.dim), c.indices[r], 0);
    }
    out.push_back(top.take_sorted());
  }
  return out;
}

// Rows with deliberate ties: duplicates, scaled copies (cosine ties), one-ulp neighbours,
// zero vectors, small integers (exact dot ties); indices shuffled and gapped.
Case make_case(size_t n, size_t dim, size_t nq, unsigned seed, bool integers, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> small(-2, 2);
  Case c;
  c.dim = dim;
  auto draw = [&] { return integers ? static_cast<float>(small(rng)) : normal(rng) * scale; };
  for (size_t r = 0; r < n; ++r) {
    const size_t kind = r % 11;
    for (size_t i = 0; i < dim; ++i) {
      float v = draw();
      if (r >= 11 && kind == 3) {
        v = c.rows[(r - 7) * dim + i];  // duplicate
      } else if (r >= 11 && kind == 5) {
        v = c.rows[(r - 2) * dim + i] * 2.0f;  // same direction
      } else if (r >= 11 && kind == 7) {
        v = c.rows[(r - 1) * dim + i];
        if (i == 0) {
          v = std::nextafter(v, 10.0f);  // a near-tie
        }
      } else if (kind == 9 && r % 22 == 9) {
        v = 0.0f;  // zero vector
      }
      c.rows.push_back(v);
    }
    c.indices.push_back(static_cast<int64_t>(r * 3 + 1));
  }
  std::vector<size_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  Case s = c;
  for (size_t r = 0; r < n; ++r) {
    std::copy_n(c.rows.begin() + static_cast<ptrdiff_t>(perm[r] * dim), dim,
                s.rows.begin() + static_cast<ptrdiff_t>(r * dim));
    s.indices[r] = c.indices[perm[r]];
  }
  for (size_t q = 0; q < nq; ++q) {
    for (size_t i = 0; i < dim; ++i) {
      float v = draw();
      if (q == 1) {
        v = 0.0f;  // zero query
      } else if (q == 2 && n > 0) {
        v = c.rows[i];  // a stored row
      }
      s.queries.push_back(v);
    }
  }
  return s;
}

void require_same(const std::vector<std::vector<TopK::Entry>>& got, const std::vector<std::vector<TopK::Entry>>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t q = 0; q < want.size(); ++q) {
    CAPTURE(q);
    REQUIRE(got[q].size() == want[q].size());
    for (size_t i = 0; i < want[q].size(); ++i) {
      CAPTURE(i);
      REQUIRE(got[q][i].index == want[q][i].index);
      REQUIRE(got[q][i].score == want[q][i].score);  // bit for bit, not approximately
    }
  }
}

void check_equal(Metric metric, const Case& c, size_t k) {
  require_same(block_topk(metric, c.dim, c.queries.data(), c.nq(), c.rows.data(), c.indices.data(), c.n(), k),
               brute(metric, c, k));
}

// The case's rows laid out as records of a mapping: `pad` bytes after each sample (a label),
// records in shuffled slots, and dead records between them (tombstones: rows that would win
// every query if they were read). Returns the records and each row's slot.
std::vector<std::byte> as_records(const Case& c, size_t pad, std::vector<int64_t>& slots) {
  const size_t stride = c.dim * sizeof(float) + pad;
  const size_t total = c.n() * 2 + 3;
  std::vector<float> dead(c.dim, 1e6f);
  dead[0] = -1e6f;
  std::vector<std::byte> out(total * stride, std::byte{0x5a});
  for (size_t s = 0; s < total; ++s) {
    std::memcpy(out.data() + s * stride, dead.data(), c.dim * sizeof(float));
  }
  slots.clear();
  for (size_t r = 0; r < c.n(); ++r) {
    const size_t slot = total - 1 - 2 * r;  // every other slot, backwards
    std::memcpy(out.data() + slot * stride, c.rows.data() + r * c.dim, c.dim * sizeof(float));
    slots.push_back(static_cast<int64_t>(slot));
  }
  return out;
}

std::vector<std::vector<TopK::Entry>> scan_in_place(Metric metric, const Case& c, const BlockScan::Rows& rows,
                                                    size_t k) {
  BlockScan scan(metric, c.dim, c.queries.data(), c.nq(), k);
  scan.scan(rows, c.n());
  return scan.finish();
}

}  // namespace

TEST_SUITE("backends::blockscan") {
  TEST_CASE("rows scored in place from strided records: slots, gaps and dead records respected") {
    const size_t n = 2 * BlockScan::k_block_rows + 77;  // enough for the two-thread split
    for (const size_t nq : {size_t{1}, BlockScan::k_fused_queries, BlockScan::k_fused_queries + 3}) {
      const Case c = make_case(n, 24, nq, static_cast<unsigned>(nq + 40), nq == 1);
      std::vector<int64_t> slots;
      const auto records = as_records(c, 8, slots);
      const size_t stride = c.dim * sizeof(float) + 8;
      for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
        CAPTURE(nq);
        CAPTURE(metric_name(metric));
        const auto want = brute(metric, c, 10);
        // Gathered: row p at slot slots[p], scored as c.indices[p].
        require_same(scan_in_place(metric, c, {records.data(), stride, slots.data(), c.indices.data()}, 10), want);
        // Contiguous: the live records packed with their stride, index = position.
        Case dense = c;
        std::vector<std::byte> packed(n * stride, std::byte{0x5a});
        for (size_t r = 0; r < n; ++r) {
          std::memcpy(packed.data() + r * stride, c.rows.data() + r * c.dim, c.dim * sizeof(float));
          dense.indices[r] = static_cast<int64_t>(r);
        }
        require_same(scan_in_place(metric, dense, {packed.data(), stride, nullptr, nullptr}, 10),
                     brute(metric, dense, 10));
      }
    }
  }

  TEST_CASE("two threads share the blocks: ties across threads keep the lowest indices") {
    // Every row the same vector: all scores tie, so the top k are the k lowest indices, which
    // lie in the last block (indices fall as positions rise), the second thread's, and one in
    // the first block, the caller's.
    const size_t n = 2 * BlockScan::k_block_rows + 10;
    Case c = make_case(n, 16, 2, 3, true);
    for (size_t r = 0; r < n; ++r) {
      std::copy_n(c.rows.begin(), c.dim, c.rows.begin() + static_cast<ptrdiff_t>(r * c.dim));
      c.indices[r] = static_cast<int64_t>(n - r) * 2;
    }
    c.indices[3] = 1;  // the lowest index, in the first half
    for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
      CAPTURE(metric_name(metric));
      const BlockScan::Rows rows{reinterpret_cast<const std::byte*>(c.rows.data()), c.dim * sizeof(float), nullptr,
                                 c.indices.data()};
      const auto got = scan_in_place(metric, c, rows, 10);
      require_same(got, brute(metric, c, 10));
      REQUIRE(got[0][0].index == 1);
      REQUIRE(got[0][1].index == 2);
    }
  }

  TEST_CASE("block scan equals the exact scan: every metric, k past the rows, partial blocks") {
    const size_t n = BlockScan::k_block_rows + 37;
    for (const bool integers : {false, true}) {
      const Case c = make_case(n, 24, 9, integers ? 7 : 3, integers);
      for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
        for (const size_t k : {size_t{1}, size_t{2}, size_t{10}, size_t{64}, n - 1, n, n + 5}) {
          CAPTURE(metric_name(metric));
          CAPTURE(integers);
          CAPTURE(k);
          check_equal(metric, c, k);
        }
      }
    }
  }

  TEST_CASE("a block of queries large enough to be split across threads") {
    const Case c = make_case(3000, 32, 130, 5, false);
    for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
      for (const size_t k : {size_t{1}, size_t{10}, size_t{3000}}) {
        CAPTURE(metric_name(metric));
        CAPTURE(k);
        check_equal(metric, c, k);
      }
    }
  }

  TEST_CASE("a few queries take the fused float32 pass: same rows, scores and ties as the exact scan") {
    const size_t n = BlockScan::k_block_rows + 301;
    for (const size_t nq : {size_t{1}, size_t{3}, BlockScan::k_fused_queries}) {
      for (const bool integers : {false, true}) {
        for (const size_t dim : {size_t{7}, size_t{128}}) {
          const Case c = make_case(n, dim, nq, static_cast<unsigned>(nq * 31 + dim), integers);
          for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
            for (const size_t k : {size_t{1}, size_t{10}, size_t{100}}) {
              CAPTURE(nq);
              CAPTURE(integers);
              CAPTURE(dim);
              CAPTURE(metric_name(metric));
              CAPTURE(k);
              check_equal(metric, c, k);
            }
          }
        }
      }
    }
  }

  TEST_CASE("the fused pass scores blocks on a second thread: several blocks, one query") {
    const Case c = make_case(3 * BlockScan::k_block_rows + 5, 5, 1, 17, true);
    for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
      CAPTURE(metric_name(metric));
      check_equal(metric, c, 10);
    }
  }

  TEST_CASE("small and empty inputs, k = 0, dimension 1") {
    for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
      CAPTURE(metric_name(metric));
      for (const size_t n : {size_t{0}, size_t{1}, size_t{5}, size_t{50}}) {
        CAPTURE(n);
        for (const size_t dim : {size_t{1}, size_t{3}, size_t{128}}) {
          CAPTURE(dim);
          const Case c = make_case(n, dim, 4, static_cast<unsigned>(n + dim), dim == 1);
          for (const size_t k : {size_t{0}, size_t{1}, size_t{3}, n + 1}) {
            CAPTURE(k);
            check_equal(metric, c, k);
          }
        }
      }
    }
  }

  TEST_CASE("values near float overflow and tiny values are rescored exactly") {
    for (const float scale : {1e19f, 1e-19f, 1e-22f}) {
      for (const size_t nq : {size_t{1}, size_t{5}, BlockScan::k_fused_queries + 1}) {
        CAPTURE(scale);
        CAPTURE(nq);
        const Case c = make_case(300, 16, nq, 11, false, scale);
        for (const Metric metric : {Metric::cosine, Metric::euclidean, Metric::dot}) {
          CAPTURE(metric_name(metric));
          check_equal(metric, c, 10);
        }
      }
    }
  }
}
