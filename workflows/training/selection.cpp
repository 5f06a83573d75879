// SPDX-License-Identifier: MIT
// Filter and split selections of an epoch (specified in selection.hpp).
#include "workflows/training/selection.hpp"

#include <fmt/format.h>
#include <cmath>
#include <set>

#include "src/errors.hpp"
#include "workflows/training/sharding.hpp"

namespace vstash::training {

namespace {
constexpr int64_t k_scan_block = 4096;

double parse_fraction(std::string_view text, std::string_view part) {
  const std::string s(text);
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || s.empty() || !std::isfinite(value) || value <= 0) {
    throw UsageError(fmt::format("--split: part \"{}\": fraction \"{}\" must be a number above 0", part, text));
  }
  return value;
}
}  // namespace

SplitSpec parse_split(std::string_view split, std::string_view take) {
  SplitSpec spec;
  std::set<std::string, std::less<>> names;
  double sum = 0;
  size_t start = 0;
  while (start <= split.size()) {
    const size_t comma = std::min(split.find(',', start), split.size());
    const std::string_view item = split.substr(start, comma - start);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      throw UsageError(fmt::format("--split: \"{}\" is not NAME=FRACTION (e.g. train=0.8,val=0.1,test=0.1)", item));
    }
    SplitPart part{std::string(item.substr(0, eq)), parse_fraction(item.substr(eq + 1), item.substr(0, eq))};
    if (!names.insert(part.name).second) {
      throw UsageError(fmt::format("--split: part \"{}\" is named twice", part.name));
    }
    sum += part.fraction;
    spec.parts.push_back(std::move(part));
    start = comma + 1;
  }
  if (std::fabs(sum - 1.0) > 1e-9) {
    throw UsageError(fmt::format("--split: fractions sum to {}, not 1", sum));
  }
  for (size_t i = 0; i < spec.parts.size(); ++i) {
    if (spec.parts[i].name == take) {
      spec.take = i;
      return spec;
    }
  }
  throw UsageError(fmt::format("--take: \"{}\" is not a part of --split \"{}\"", take, split));
}

size_t split_of(const SplitSpec& split, std::string_view row_id, uint64_t seed) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (const char c : row_id) {
    h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ULL;
  }
  const double x = static_cast<double>(mix64(h ^ mix64(seed)) >> 11) / 9007199254740992.0;  // 2^53
  double c = 0;
  for (size_t i = 0; i < split.parts.size(); ++i) {
    c += split.parts[i].fraction;
    if (x < c || i + 1 == split.parts.size()) {
      return i;
    }
  }
  return 0;
}

std::optional<std::vector<int64_t>> select_positions(backends::Backend& backend, const std::string& dataset,
                                                     const backends::DatasetInfo& info, const Filter* filter,
                                                     const SplitSpec* split, uint64_t seed) {
  if (filter != nullptr && filter->empty()) {
    filter = nullptr;
  }
  if (filter == nullptr && split == nullptr) {
    return std::nullopt;
  }
  check_label_filter(filter, dataset, info.spec.label_dtype, info.spec.label_shape);
  const bool with_label = filter != nullptr && filter->uses_label();
  std::vector<int64_t> out;
  for (int64_t offset = 0; offset < info.rows; offset += k_scan_block) {
    const backends::RowBatch rows = backend.read_rows(dataset, offset, std::min(k_scan_block, info.rows - offset));
    const auto n = static_cast<int64_t>(rows.size());
    for (int64_t j = 0; j < n; ++j) {
      const auto u = static_cast<size_t>(j);
      if (split != nullptr && split_of(*split, rows.ids[u], seed) != split->take) {
        continue;
      }
      if (filter != nullptr) {
        const nlohmann::json label = with_label && rows.labels
                                         ? label_value(rows.labels->dtype(), rows.labels->row(j).data())
                                         : nlohmann::json(nullptr);
        if (!filter->matches(u < rows.metadata.size() ? rows.metadata[u] : nlohmann::json(nullptr), label)) {
          continue;
        }
      }
      out.push_back(offset + j);
    }
    if (n < std::min(k_scan_block, info.rows - offset)) {
      break;  // rows deleted since dataset_info: the positions past them do not exist
    }
  }
  return out;
}

}  // namespace vstash::training
