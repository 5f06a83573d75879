// SPDX-License-Identifier: MIT
#include "workflows/transfer/compare.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <future>
#include <random>
#include <set>
#include <unordered_map>

#include "backends/common/catalog.hpp"
#include "src/errors.hpp"
#include "workflows/transfer/copy.hpp"
#include "workflows/transfer/digest.hpp"

namespace vstash::transfer {

namespace {

using backends::Backend;
using backends::DatasetInfo;
using backends::DatasetSpec;
using backends::RowBatch;

DatasetInfo require(Backend& b, const std::string& dataset, const char* side) {
  auto info = b.dataset_info(dataset);
  if (!info) {
    throw NotFoundError(fmt::format("{}: dataset \"{}\" not found", side, dataset));
  }
  return *info;
}

std::vector<std::string> metadata_differences(const nlohmann::json& a, const nlohmann::json& b) {
  std::set<std::string> keys;
  for (const auto* j : {&a, &b}) {
    if (j->is_object()) {
      for (const auto& [k, v] : j->items()) {
        if (!is_bookkeeping_key(k)) {
          keys.insert(k);
        }
      }
    }
  }
  std::vector<std::string> out;
  for (const auto& k : keys) {
    const auto va = a.is_object() && a.contains(k) ? canonical_metadata(nlohmann::json{{"v", a[k]}}) : "";
    const auto vb = b.is_object() && b.contains(k) ? canonical_metadata(nlohmann::json{{"v", b[k]}}) : "";
    if (va != vb) {
      out.push_back(k);
    }
  }
  return out;
}

// Rows seen on one side whose partner has not appeared yet: id -> digest.
using Pending = std::unordered_map<std::string, Digest>;

// A row of one side: matched against the other side's pending rows, else pending itself.
void meet(const std::string& id, const Digest& d, Pending& mine, Pending& theirs, CompareResult& r, size_t listed) {
  if (auto it = theirs.find(id); it != theirs.end()) {
    if (!(it->second == d)) {
      r.differing.add(id, listed);
    }
    theirs.erase(it);
  } else {
    mine.emplace(id, d);
  }
}

void compare_full(Backend& src, const std::string& sds, Backend& dst, const std::string& dds, const CompareOptions& o,
                  CompareResult& r, const std::function<void(int64_t)>& progress) {
  const int64_t n = std::max(r.src_rows, r.dst_rows);
  const int64_t block = std::max<int64_t>(o.block_rows, 1);
  auto read = [](Backend& b, const std::string& ds, int64_t first, int64_t count) {
    return std::async(std::launch::async, [&b, &ds, first, count] { return b.read_rows(ds, first, count); });
  };
  DatasetDigest src_digest, dst_digest;
  Pending src_pending, dst_pending;
  std::future<RowBatch> next_src, next_dst;
  if (n > 0) {
    next_src = read(src, sds, 0, block);
    next_dst = read(dst, dds, 0, block);
  }
  for (int64_t first = 0; first < n; first += block) {
    RowBatch a = next_src.get();
    RowBatch b = next_dst.get();
    if (first + block < n) {  // read the next blocks while this one is digested
      next_src = read(src, sds, first + block, block);
      next_dst = read(dst, dds, first + block, block);
    }
    const size_t common = std::min(a.size(), b.size());
    for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
      if (i < a.size()) {
        const Digest da = row_digest(a, i);
        src_digest.add(da);
        if (i < common && a.ids[i] == b.ids[i]) {
          const Digest db = row_digest(b, i);
          dst_digest.add(db);
          if (!(da == db)) {
            r.differing.add(a.ids[i], o.listed);
          }
          continue;
        }
        meet(a.ids[i], da, src_pending, dst_pending, r, o.listed);
      }
      if (i < b.size()) {
        const Digest db = row_digest(b, i);
        dst_digest.add(db);
        meet(b.ids[i], db, dst_pending, src_pending, r, o.listed);
      }
    }
    r.compared += static_cast<int64_t>(a.size());
    progress(r.compared);
  }
  // What is still waiting has no partner. Listed in id order, so the output is stable.
  for (auto [pending, list] : {std::pair{&src_pending, &r.missing}, std::pair{&dst_pending, &r.extra}}) {
    std::vector<std::string> ids;
    ids.reserve(pending->size());
    for (const auto& [id, d] : *pending) {
      ids.push_back(id);
    }
    std::sort(ids.begin(), ids.end());
    for (const auto& id : ids) {
      list->add(id, o.listed);
    }
  }
  r.src_digest = src_digest.finish().hex();
  r.dst_digest = dst_digest.finish().hex();
  r.order_differs =
      r.src_digest != r.dst_digest && r.missing.count == 0 && r.extra.count == 0 && r.differing.count == 0;
}

// N distinct positions of [0, rows), sorted (Floyd's algorithm: N draws, no table of rows).
std::vector<int64_t> sample_positions(int64_t rows, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::set<int64_t> chosen;
  for (int64_t j = rows - n; j < rows; ++j) {
    const int64_t t = std::uniform_int_distribution<int64_t>(0, j)(rng);
    if (!chosen.insert(t).second) {
      chosen.insert(j);
    }
  }
  return {chosen.begin(), chosen.end()};
}

void compare_sample(Backend& src, const std::string& sds, Backend& dst, const std::string& dds, const CompareOptions& o,
                    CompareResult& r, const std::function<void(int64_t)>& progress) {
  r.sampled = true;
  const auto positions = sample_positions(r.src_rows, std::min(*o.sample, r.src_rows), o.seed);
  const size_t block = static_cast<size_t>(std::max<int64_t>(o.block_rows, 1));
  for (size_t first = 0; first < positions.size(); first += block) {
    const std::vector<int64_t> some(
        positions.begin() + static_cast<std::ptrdiff_t>(first),
        positions.begin() + static_cast<std::ptrdiff_t>(std::min(first + block, positions.size())));
    const RowBatch a = src.read_positions(sds, some);
    const RowBatch b = dst.fetch(dds, a.ids);
    std::unordered_map<std::string, size_t> at;
    for (size_t i = 0; i < b.size(); ++i) {
      at.emplace(b.ids[i], i);
    }
    for (size_t i = 0; i < a.size(); ++i) {
      auto it = at.find(a.ids[i]);
      if (it == at.end()) {
        r.missing.add(a.ids[i], o.listed);
      } else if (!(row_digest(a, i) == row_digest(b, it->second))) {
        r.differing.add(a.ids[i], o.listed);
      }
    }
    r.compared += static_cast<int64_t>(a.size());
    progress(r.compared);
  }
}

}  // namespace

void IdList::add(const std::string& id, size_t listed) {
  ++count;
  if (first.size() < listed) {
    first.push_back(id);
  }
}

bool CompareResult::equal() const {
  return spec_difference.empty() && metadata_keys_differing.empty() && src_rows == dst_rows && missing.count == 0 &&
         extra.count == 0 && differing.count == 0 && !order_differs;
}

CompareResult compare_datasets(Backend& src, const std::string& src_dataset, Backend& dst,
                               const std::string& dst_dataset, const CompareOptions& options,
                               const std::function<void(int64_t)>& progress) {
  const DatasetInfo si = require(src, src_dataset, "source");
  const DatasetInfo di = require(dst, dst_dataset, "destination");
  CompareResult r;
  r.src_rows = si.rows;
  r.dst_rows = di.rows;
  const std::string src_spec = backends::catalog::describe(si.spec);
  const std::string dst_spec = backends::catalog::describe(di.spec);
  if (src_spec != dst_spec) {
    r.spec_difference = fmt::format("source is {}, destination is {}", src_spec, dst_spec);
  }
  r.metadata_keys_differing = metadata_differences(si.spec.metadata, di.spec.metadata);
  if (options.sample) {
    compare_sample(src, src_dataset, dst, dst_dataset, options, r, progress);
  } else {
    compare_full(src, src_dataset, dst, dst_dataset, options, r, progress);
  }
  return r;
}

}  // namespace vstash::transfer
