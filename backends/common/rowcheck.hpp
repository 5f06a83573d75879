// SPDX-License-Identifier: MIT
// Checks a RowBatch against its dataset before any backend writes it, so every store
// refuses the same input with the same message.
#pragma once

#include "backends/backend.hpp"

namespace vstash::backends {

// Throws UsageError naming the dataset and the first offending row id: sizes of ids /
// indices / metadata disagree with the data, dtype or row shape differ from the spec,
// labels present/absent against the spec, an empty or duplicate id, metadata that is not an
// object or null, NaN or Inf in a floating-point sample.
void check_batch(const DatasetSpec& spec, const RowBatch& batch);
// Throws UsageError for a dataset spec no store can hold: empty name, a zero or negative
// dimension in the row or label shape, metadata that is not an object.
void check_spec(const DatasetSpec& spec);
// Throws UsageError if any value is NaN or Inf (names the row id).
void check_finite(const Array& data, const std::vector<std::string>& ids, const std::string& dataset);

}  // namespace vstash::backends
