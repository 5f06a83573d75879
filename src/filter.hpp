// SPDX-License-Identifier: MIT
// The one metadata filter language every backend understands.
//
//   {"genre": "drama"}                              shorthand for $eq
//   {"year": {"$gte": 2019, "$lt": 2024}}           several operators on one key are ANDed
//   {"$or": [{"tag": {"$in": ["a", "b"]}}, {"draft": {"$exists": false}}]}
//
// Semantics, identical on every backend (the contract suite checks them):
// - Keys name top-level metadata fields, taken literally (a dot is part of the key).
// - $eq/$ne take a string, number or bool. Numbers compare numerically (1 equals 1.0);
//   values of different JSON types never compare equal.
// - $gt/$gte/$lt/$lte take a number and match only numeric fields.
// - $in/$nin take a non-empty array of strings or numbers.
// - $exists takes a bool.
// - A field holding an array matches $eq/$in when any element matches.
// - $ne and $nin are the negation of $eq and $in: they also match records without the field.
// - Several keys in one object, and several operators on one key, are ANDed.
// - The reserved key "$label" addresses the row's label instead of a metadata field, with
//   every operator but $exists, on datasets with scalar labels only (check_label_filter):
//   {"$label": {"$in": [3, 5]}}. A bool label compares as true/false, any other label as a
//   number (its float64 value: a float32 label 0.1 is 0.10000000149011612, not 0.1).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/array.hpp"

namespace vstash {

// The reserved filter key that names the row's label.
inline constexpr std::string_view k_label_key = "$label";

struct FilterNode {
  enum class Kind { and_, or_, eq, ne, gt, gte, lt, lte, in, nin, exists };
  Kind kind = Kind::and_;
  std::string key;                   // comparison nodes
  nlohmann::json value;              // eq/ne/gt..lte: scalar; in/nin: array; exists: bool
  std::vector<FilterNode> children;  // and_/or_
};

class Filter {
 public:
  // Parses the JSON text or value; throws UsageError naming the operator and the path
  // (`filter: $.year.$gte: expects a number, got "x"`).
  static Filter parse(const std::string& text);
  static Filter from_json(const nlohmann::json& j);

  const FilterNode& root() const { return m_root; }
  // An empty filter ({}) matches everything.
  bool empty() const { return m_root.kind == FilterNode::Kind::and_ && m_root.children.empty(); }
  // True when some condition names $label (the caller must then pass the row's label).
  bool uses_label() const { return m_uses_label; }
  // Evaluates against a record's metadata object (null or missing metadata = {}) and its
  // label as label_value() gives it (null: no label, which no $label condition but $ne/$nin
  // matches).
  bool matches(const nlohmann::json& metadata, const nlohmann::json& label = nullptr) const;
  // Canonical JSON form (explicit operators, $and/$or arrays): stable text for cache keys.
  nlohmann::json to_json() const;

 private:
  FilterNode m_root;
  bool m_uses_label = false;
};

std::string_view filter_op_name(FilterNode::Kind k);  // "$eq", "$and", ...

// The value $label compares against for one label element at p: a bool for bool labels, an
// integer for integer dtypes, a double (exact) for float dtypes.
nlohmann::json label_value(DType dtype, const std::byte* p);
// Throws UsageError naming the dataset when filter uses $label and the dataset has no labels
// or labels that are not scalars. A null filter passes.
void check_label_filter(const Filter* filter, const std::string& dataset, const std::optional<DType>& label_dtype,
                        const Shape& label_shape);

}  // namespace vstash
