// SPDX-License-Identifier: MIT
// Calibration of a built HNSW graph (localindex.hpp `calibrate`): how wide a search must be
// for the graph to find the target share of the true top 10, and whether it is then cheaper
// than the exact scan. Sampled rows of the dataset, held out of the graph until calibration is
// done (LocalIndex::HoldOut), stand in for fresh queries: a row in the graph would find its
// own neighbours through its own links, which overstated recall by about 2 points on
// clustered rows. Their exact answers come from the caller (the block scan), held rows left
// out. The cost is counted, not timed (the machine may be shared): graph links examined per
// query.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
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

// The first `want` of ranked that are not in absent (sorted).
std::vector<int64_t> present(const std::vector<int64_t>& ranked, const std::vector<int64_t>& absent, size_t want) {
  std::vector<int64_t> out;
  for (const int64_t i : ranked) {
    if (out.size() < want && !std::binary_search(absent.begin(), absent.end(), i)) {
      out.push_back(i);
    }
  }
  return out;
}

// The share of want's rows that got holds, over all queries.
double recall_of(const std::vector<std::vector<int64_t>>& got, const std::vector<std::vector<int64_t>>& want) {
  size_t found = 0, total = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    for (const int64_t w : want[i]) {
      found += std::find(got[i].begin(), got[i].end(), w) != got[i].end() ? 1 : 0;
    }
    total += want[i].size();
  }
  return total == 0 ? 1.0 : static_cast<double>(found) / static_cast<double>(total);
}

}  // namespace

std::vector<size_t> calibration_positions(size_t rows) {
  // Distinct draws (at most 200 of at least 2,000 rows: few repeats), in O(count) memory.
  const size_t count = std::min<size_t>(k_calibration_rows, rows / 10);
  std::set<size_t> chosen;
  uint64_t state = 16;
  while (chosen.size() < count) {
    chosen.insert(static_cast<size_t>(next_random(state) % rows));
  }
  return {chosen.begin(), chosen.end()};
}

Calibration calibrate(const LocalIndex& index, const std::vector<float>& queries, const std::vector<int64_t>& absent,
                      double target, const std::vector<int>& ladder, double max_links, const ExactTop& exact,
                      const IndexProgressFn& progress) {
  Calibration c;
  c.target = target;
  const size_t dim = index.dimension();
  const size_t n = queries.size() / dim;
  c.sample = static_cast<int64_t>(n);
  const size_t k = std::min(k_recall_at, index.size());
  if (n == 0 || k == 0 || ladder.empty()) {  // nothing measured: the first breadth, as before calibration
    c.ef = c.tried_ef = ladder.empty() ? 16 : ladder.front();
    c.recall = 1;
    c.used = true;
    return c;
  }
  std::vector<int64_t> gone = absent;
  std::sort(gone.begin(), gone.end());
  auto want = exact(queries, n, k + std::min<size_t>(gone.size(), k));
  for (auto& w : want) {
    w = present(w, gone, k);
  }
  const size_t threads = std::max(1u, std::thread::hardware_concurrency());
  for (size_t step = 0; step < ladder.size(); ++step) {
    std::vector<std::vector<int64_t>> got(n);
    const int64_t before = index.links_examined();
    parallel_for(n, threads, [&](size_t i) {
      for (const auto& h : index.search(&queries[i * dim], k, static_cast<size_t>(ladder[step]), {}, true)) {
        got[i].push_back(h.index);
      }
    });
    c.tried_ef = ladder[step];
    c.links = static_cast<double>(index.links_examined() - before) / static_cast<double>(n);
    c.recall = recall_of(got, want);
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
