// SPDX-License-Identifier: MIT
// Which rows an epoch is over: those matching a filter (batch --filter) and falling in one
// part of a split (batch --split train=0.8,val=0.1,test=0.1 --take train).
//
// A row's split part depends only on its id and the seed, so it never changes when rows are
// added; the parts are disjoint and cover the dataset. Specified bit for bit (Python):
//
//   def split_of(row_id, seed, fractions):       # fractions in the order given to --split
//       h = 0xCBF29CE484222325                   # FNV-1a 64 over the id's UTF-8 bytes
//       for b in row_id.encode():
//           h = ((h ^ b) * 0x100000001B3) & M
//       x = (mix(h ^ mix(seed)) >> 11) / 2.0**53  # in [0, 1); mix, M: sharding.hpp
//       c = 0.0
//       for i, f in enumerate(fractions):
//           c += f                               # float64 sums, in order
//           if x < c or i == len(fractions) - 1:
//               return i
//
// The selection is found by one pass over the rows in index order (read_rows in blocks),
// evaluating the filter on the client with the one filter language (src/filter.hpp), so it is
// the same on every backend.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.hpp"
#include "src/filter.hpp"

namespace vstash::training {

struct SplitPart {
  std::string name;
  double fraction = 0;
};

struct SplitSpec {
  std::vector<SplitPart> parts;
  size_t take = 0;  // index of the part read
};

// Parses "--split train=0.8,val=0.1,test=0.1" and "--take train". Throws UsageError naming the
// flag: a part without a name or with a fraction not > 0, a repeated name, fractions not
// summing to 1 (within 1e-9), --take naming no part.
SplitSpec parse_split(std::string_view split, std::string_view take);

// Index of the part row_id falls in (the recipe above).
size_t split_of(const SplitSpec& split, std::string_view row_id, uint64_t seed);

// The positions (ascending) of the dataset's rows that match filter and fall in split's taken
// part; nullopt when both are null (every row). Throws UsageError when filter uses $label and
// the dataset has no scalar labels.
std::optional<std::vector<int64_t>> select_positions(backends::Backend& backend, const std::string& dataset,
                                                     const backends::DatasetInfo& info, const Filter* filter,
                                                     const SplitSpec* split, uint64_t seed);

}  // namespace vstash::training
