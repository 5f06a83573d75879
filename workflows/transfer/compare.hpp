// SPDX-License-Identifier: MIT
// The algorithm of `vstash check` and `copy --verify`: are two datasets the same? Compared
// by spec, count, ids and each row's content digest (digest.hpp), streamed in blocks read from
// both stores at once, so memory stays bounded while the two keep one order (as a copy does);
// rows found out of step wait in a table until their partner appears.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::transfer {

struct CompareOptions {
  int64_t block_rows = 10240;
  std::optional<int64_t> sample;  // compare only this many source rows, drawn at random
  uint64_t seed = 1;              // the sample's seed
  size_t listed = 5;              // ids listed per kind of difference
};

// One kind of difference: how many rows, and the first few ids.
struct IdList {
  int64_t count = 0;
  std::vector<std::string> first;
  void add(const std::string& id, size_t listed);
};

struct CompareResult {
  int64_t src_rows = 0;
  int64_t dst_rows = 0;
  int64_t compared = 0;                              // source rows looked at (all, or the sample)
  std::string spec_difference;                       // "" when dtype, shape, labels and metric agree
  std::vector<std::string> metadata_keys_differing;  // dataset-level, bookkeeping keys aside
  IdList missing;                                    // in the source, not in the destination
  IdList extra;                                      // in the destination, not in the source (full comparison only)
  IdList differing;                                  // in both, with different content
  bool order_differs = false;                        // same rows, another index order (full comparison only)
  std::string src_digest, dst_digest;                // dataset digests (full comparison only)
  bool sampled = false;

  bool equal() const;
};

// Compares dataset `src_dataset` of src with `dst_dataset` of dst. Throws NotFoundError if
// either is missing. progress gets the number of source rows compared so far.
CompareResult compare_datasets(backends::Backend& src, const std::string& src_dataset, backends::Backend& dst,
                               const std::string& dst_dataset, const CompareOptions& options,
                               const std::function<void(int64_t)>& progress);

}  // namespace vstash::transfer
