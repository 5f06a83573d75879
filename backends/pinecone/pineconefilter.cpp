// SPDX-License-Identifier: MIT
// vstash filters to Pinecone filter JSON, and the rules Pinecone puts on record metadata.
#include <fmt/format.h>
#include <algorithm>
#include <cmath>

#include "backends/pinecone/pineconeinternal.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pinecone {

namespace {

using Kind = FilterNode::Kind;

json field_op(const FilterNode& n) { return json{{n.key, json{{std::string(filter_op_name(n.kind)), n.value}}}}; }

// $label on "_lval": a bool label compares only with true/false, any other only with numbers;
// a condition that cannot match becomes _idx < 0, one that always does _idx >= 0 (every row's
// _idx is a whole number >= 0).
json label_node(const FilterNode& n, bool is_bool) {
  const json never = {{"_idx", {{"$lt", 0}}}};
  const json always = {{"_idx", {{"$gte", 0}}}};
  auto fits = [&](const json& v) { return is_bool ? v.is_boolean() : v.is_number(); };
  auto op = [&](const char* name, const json& v) { return json{{"_lval", json{{name, v}}}}; };
  auto absent_or = [&](json cond) {
    return json{{"$or", json::array({std::move(cond), json{{"_lval", json{{"$exists", false}}}}})}};
  };
  json values = json::array();
  if (n.kind == Kind::in || n.kind == Kind::nin) {
    for (const auto& v : n.value) {
      if (fits(v)) {
        values.push_back(v);
      }
    }
  }
  switch (n.kind) {
    case Kind::eq:
      return fits(n.value) ? op("$eq", n.value) : never;
    case Kind::ne:
      return fits(n.value) ? absent_or(op("$ne", n.value)) : always;
    case Kind::in:
      return values.empty() ? never : op("$in", values);
    case Kind::nin:
      return values.empty() ? always : absent_or(op("$nin", values));
    case Kind::gt:
    case Kind::gte:
    case Kind::lt:
    case Kind::lte:
      return is_bool ? never : op(std::string(filter_op_name(n.kind)).c_str(), n.value);
    default:
      return never;
  }
}

json translate_node(const FilterNode& n, bool is_bool) {
  if (n.kind != Kind::and_ && n.kind != Kind::or_ && n.key == k_label_key) {
    return label_node(n, is_bool);
  }
  switch (n.kind) {
    case Kind::and_:
    case Kind::or_: {
      json parts = json::array();
      for (const auto& c : n.children) {
        parts.push_back(translate_node(c, is_bool));
      }
      if (parts.size() == 1) {
        return parts.front();
      }
      return json{{n.kind == Kind::and_ ? "$and" : "$or", parts}};
    }
    case Kind::ne:
    case Kind::nin:
      // Pinecone's $ne/$nin skip records that lack the field; vstash's match them.
      return json{{"$or", json::array({field_op(n), json{{n.key, json{{"$exists", false}}}}})}};
    default:
      return field_op(n);
  }
}

}  // namespace

json translate_filter(const Filter& filter, const CatalogEntry* entry) {
  if (filter.empty()) {
    return nullptr;
  }
  bool is_bool = false;
  if (filter.uses_label()) {
    if (entry == nullptr) {
      throw Error("filter: $label used where the dataset's catalog is not known");
    }
    check_label_filter(&filter, entry->spec.name, entry->spec.label_dtype, entry->spec.label_shape);
    if (!entry->label_field) {
      throw UsageError(
          fmt::format("dataset \"{}\": filter: $label needs the rows' _lval field, which this dataset "
                      "predates (copy it to a new dataset to filter on labels)",
                      entry->spec.name));
    }
    is_bool = *entry->spec.label_dtype == DType::b1;
  }
  return translate_node(filter.root(), is_bool);
}

size_t metadata_bytes(const json& metadata) { return metadata.dump().size(); }

bool is_reserved_key(std::string_view key) {
  return key == "_idx" || key == "_label" || key == "_lval" || key == "_data" || key == "_id" || key == "_zero" ||
         key == "_json";
}

bool is_native_value(const json& value) {
  if (value.is_string() || value.is_boolean()) {
    return true;
  }
  if (value.is_number_integer()) {
    // Compared as integers: converted to double first, 2^53 + 1 would round to 2^53 and pass.
    constexpr uint64_t k_exact_int = uint64_t{1} << 53;
    if (value.is_number_unsigned()) {
      return value.get<uint64_t>() <= k_exact_int;
    }
    const int64_t i = value.get<int64_t>();
    return i >= -static_cast<int64_t>(k_exact_int) && i <= static_cast<int64_t>(k_exact_int);
  }
  if (value.is_number_float()) {
    return std::isfinite(value.get<double>());
  }
  if (value.is_array()) {
    return std::all_of(value.begin(), value.end(), [](const json& e) { return e.is_string(); });
  }
  return false;
}

void check_user_metadata(const json& metadata, const std::string& dataset, const std::string& id) {
  if (metadata.is_null()) {
    return;
  }
  auto fail = [&](const std::string& what) {
    throw UsageError(fmt::format("dataset \"{}\": row \"{}\": {}", dataset, id, what));
  };
  if (!metadata.is_object()) {
    fail("metadata must be a JSON object");
  }
  for (const auto& [key, value] : metadata.items()) {
    if (is_reserved_key(key)) {
      fail(fmt::format("metadata key \"{}\" is reserved by the pinecone backend", key));
    }
    if (value.is_null()) {
      fail(fmt::format("metadata key \"{}\" is null; pinecone cannot store null (leave the key out)", key));
    }
  }
  const size_t bytes = metadata_bytes(metadata);
  if (bytes > k_max_metadata_bytes) {
    fail(fmt::format("metadata is {} bytes serialized, over pinecone's {}-byte limit per record", bytes,
                     k_max_metadata_bytes));
  }
}

json normalize_numbers(json metadata) {
  if (!metadata.is_object()) {
    return metadata;
  }
  for (auto& [key, value] : metadata.items()) {
    if (value.is_number_float()) {
      const double d = value.get<double>();
      // 2^53: beyond it float64 no longer holds every integer, so the value stays a float.
      if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) <= 9007199254740992.0) {
        value = static_cast<int64_t>(d);
      }
    }
  }
  return metadata;
}

}  // namespace vstash::backends::pinecone
