// SPDX-License-Identifier: MIT
#include "backends/common/rowcheck.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "src/errors.hpp"

namespace vstash::backends {

void check_finite(const Array& data, const std::vector<std::string>& ids, const std::string& dataset) {
  const int64_t r = data.first_nonfinite_row();
  if (r < 0) {
    return;
  }
  const int64_t per_row = shape_product(data.row_shape());
  int64_t j = 0;
  while (j < per_row && std::isfinite(data.element_as_double(r * per_row + j))) {
    ++j;
  }
  const std::string id = r < static_cast<int64_t>(ids.size()) ? ids[static_cast<size_t>(r)] : std::to_string(r);
  throw UsageError(fmt::format("dataset \"{}\": row \"{}\": NaN or Inf at element {}", dataset, id, j));
}

void check_batch(const DatasetSpec& spec, const RowBatch& b) {
  const auto n = static_cast<int64_t>(b.ids.size());
  const std::string& ds = spec.name;
  if (b.data.rows() != n || (!b.indices.empty() && static_cast<int64_t>(b.indices.size()) != n) ||
      (!b.metadata.empty() && static_cast<int64_t>(b.metadata.size()) != n)) {
    throw UsageError(fmt::format("dataset \"{}\": batch has {} ids, {} rows, {} indices, {} metadata entries", ds, n,
                                 b.data.rows(), b.indices.size(), b.metadata.size()));
  }
  if (b.data.dtype() != spec.dtype || b.data.row_shape() != spec.row_shape) {
    throw UsageError(fmt::format("dataset \"{}\": holds {} rows of shape {}, got {} rows of shape {}", ds,
                                 dtype_name(spec.dtype), shape_to_string(spec.row_shape), dtype_name(b.data.dtype()),
                                 shape_to_string(b.data.row_shape())));
  }
  if (spec.label_dtype.has_value() != b.labels.has_value()) {
    throw UsageError(
        fmt::format("dataset \"{}\": {}", ds, spec.label_dtype ? "rows need labels" : "dataset has no labels"));
  }
  if (b.labels &&
      (b.labels->dtype() != *spec.label_dtype || b.labels->row_shape() != spec.label_shape || b.labels->rows() != n)) {
    throw UsageError(fmt::format("dataset \"{}\": labels must be {} of shape {}, got {} of shape {}", ds,
                                 dtype_name(*spec.label_dtype), shape_to_string(spec.label_shape),
                                 dtype_name(b.labels->dtype()), shape_to_string(b.labels->row_shape())));
  }
  std::unordered_set<std::string_view> seen;
  for (int64_t i = 0; i < n; ++i) {
    const auto& id = b.ids[static_cast<size_t>(i)];
    if (id.empty()) {
      throw UsageError(fmt::format("dataset \"{}\": row {}: empty id", ds, i));
    }
    if (!seen.insert(id).second) {
      throw UsageError(fmt::format("dataset \"{}\": duplicate id \"{}\" in one batch", ds, id));
    }
    if (!b.metadata.empty()) {
      const auto& m = b.metadata[static_cast<size_t>(i)];
      if (!m.is_null() && !m.is_object()) {
        throw UsageError(fmt::format("dataset \"{}\": row \"{}\": metadata must be a JSON object", ds, id));
      }
    }
  }
  check_finite(b.data, b.ids, ds);
}

void check_spec(const DatasetSpec& spec) {
  if (spec.name.empty()) {
    throw UsageError("dataset name is empty");
  }
  auto positive = [](const Shape& s) { return std::all_of(s.begin(), s.end(), [](int64_t d) { return d > 0; }); };
  if (!positive(spec.row_shape) || !positive(spec.label_shape)) {
    throw UsageError(fmt::format("dataset \"{}\": row and label shapes need positive dimensions, got {} and {}",
                                 spec.name, shape_to_string(spec.row_shape), shape_to_string(spec.label_shape)));
  }
  if (!spec.metadata.is_null() && !spec.metadata.is_object()) {
    throw UsageError(fmt::format("dataset \"{}\": dataset metadata must be a JSON object", spec.name));
  }
}

}  // namespace vstash::backends
