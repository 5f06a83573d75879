// SPDX-License-Identifier: MIT
// Calibration of a built HNSW graph (localindex.hpp `calibrate`): how wide a search must be
// for the graph to find the target share of the true top 10, and whether it is then cheaper
// than the exact scan. Sampled rows of the dataset stand in for queries; their exact answers
// come from the caller (the block scan), each row itself left out of both answers. The cost
// is counted, not timed (the machine may be shared): graph links examined per query.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "backends/local/localindex.hpp"

namespace vstash::backends::local {

namespace {

constexpr size_t k_recall_at = 10;

// splitmix64: a fixed sequence on every platform (std's distributions are not).
uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// count distinct positions of [0, n), in ascending order (a partial Fisher-Yates shuffle).
std::vector<size_t> sample_positions(size_t n, size_t count) {
  std::vector<size_t> all(n);
  for (size_t i = 0; i < n; ++i) {
    all[i] = i;
  }
  uint64_t state = 16;
  for (size_t i = 0; i < count; ++i) {
    std::swap(all[i], all[i + next_random(state) % (n - i)]);
  }
  all.resize(count);
  std::sort(all.begin(), all.end());
  return all;
}

// The first `want` of ranked without `self`.
std::vector<int64_t> without_self(const std::vector<int64_t>& ranked, int64_t self, size_t want) {
  std::vector<int64_t> out;
  for (const int64_t i : ranked) {
    if (i != self && out.size() < want) {
      out.push_back(i);
    }
  }
  return out;
}

}  // namespace

Calibration calibrate(const LocalIndex& index, double target, const std::vector<int>& ladder, double max_links,
                      const ExactTop& exact, const IndexProgressFn& progress) {
  Calibration c;
  c.target = target;
  const size_t rows = index.size();
  const size_t k = std::min(k_recall_at, rows > 0 ? rows - 1 : 0);
  c.sample = static_cast<int64_t>(std::min<size_t>(k_calibration_rows, rows));
  if (k == 0 || ladder.empty()) {  // nothing to miss: any breadth finds every neighbour
    c.ef = c.tried_ef = ladder.empty() ? 0 : ladder.front();
    c.recall = 1;
    c.used = c.ef > 0;
    return c;
  }
  const auto positions = sample_positions(rows, static_cast<size_t>(c.sample));
  std::vector<int64_t> self(positions.size());
  std::vector<float> queries;
  for (size_t i = 0; i < positions.size(); ++i) {
    self[i] = index.index_at(positions[i]);
    const auto v = index.values(self[i]);
    queries.insert(queries.end(), v.begin(), v.end());
  }
  const size_t n = self.size();
  const size_t dim = queries.size() / n;
  const auto truth = exact(queries, n, k + 1);
  const size_t threads = std::max(1u, std::thread::hardware_concurrency());
  for (size_t step = 0; step < ladder.size(); ++step) {
    const int ef = ladder[step];
    std::vector<size_t> found(n);
    const int64_t before = index.links_examined();
    parallel_for(n, threads, [&](size_t i) {
      const auto hits = index.search(&queries[i * dim], k + 1, static_cast<size_t>(ef), {}, true);
      std::vector<int64_t> got;
      for (const auto& h : hits) {
        got.push_back(h.index);
      }
      const auto want = without_self(truth[i], self[i], k);
      got = without_self(got, self[i], k);
      found[i] = static_cast<size_t>(std::count_if(
          want.begin(), want.end(), [&](int64_t w) { return std::find(got.begin(), got.end(), w) != got.end(); }));
    });
    c.tried_ef = ef;
    c.links = static_cast<double>(index.links_examined() - before) / static_cast<double>(n);
    size_t total = 0;
    for (const size_t f : found) {
      total += f;
    }
    c.recall = static_cast<double>(total) / static_cast<double>(n * k);
    if (progress) {
      progress({"building index: calibrating", static_cast<int64_t>(step + 1), static_cast<int64_t>(ladder.size())});
    }
    if (c.recall >= target || c.links > max_links) {
      break;
    }
  }
  c.ef = c.recall >= target ? c.tried_ef : 0;
  c.used = c.ef > 0 && c.links <= max_links;
  return c;
}

std::string describe_calibration(const Calibration& c, int64_t rows) {
  if (c.used) {
    return fmt::format("estimated recall@10 {:.3f} at ef {} on {} sampled rows ({:.0f} distances per query)", c.recall,
                       c.ef, c.sample, c.links);
  }
  const int64_t budget = rows / k_cost_fraction;
  if (c.ef == 0 && c.links <= static_cast<double>(budget)) {
    return fmt::format(
        "not used: recall@10 {:.2f} needs more than ef {} ({:.3f} there on {} sampled rows); queries scan exactly",
        c.target, c.tried_ef, c.recall, c.sample);
  }
  return fmt::format(
      "not used: recall@10 {:.3f} at ef {} on {} sampled rows costs {:.0f} distances per query, more than rows / {} "
      "= {}; queries scan exactly",
      c.recall, c.tried_ef, c.sample, c.links, k_cost_fraction, budget);
}

}  // namespace vstash::backends::local
