// SPDX-License-Identifier: MIT
// Filter -> Qdrant filter, evaluated by the server. Keys are payload paths under "metadata"
// (a key that is not a plain path segment is quoted: metadata."a.b" names the key "a.b",
// since vstash keys are literal; a key holding '"' or empty cannot be written):
//   $eq string/bool    match.value                      (array fields: any element, as in vstash)
//   $eq number         range gte=lte=x                  Qdrant's match.value on an integer never
//                                                       equals a float payload; range compares
//                                                       both numerically (1 equals 1.0)
//   $in / $nin         should of the $eq conditions / must_not of it
//   $ne                must_not of the $eq condition    (a missing field matches, as in vstash)
// With the rows' filter aids (qdrantpoints.hpp: datasets whose catalog says filter_aids):
//   $gt..$lte          range on _num.<key>              _num holds only single numbers, so an
//                                                       array field never matches, as in vstash
//   $exists            _keys match.value <key> (or must_not of it): null counts as absent
// Without them (datasets written before the aids), and for keys that cannot be written as a
// path, the translation is a superset (range and is_empty on metadata.<key>, or no condition)
// and the caller post-filters with Filter::matches. A superset child of $or makes the whole $or
// unconstrained; negations are only built from exact conditions, so the result is always a
// superset.
// $label reads the payload's "label" (a number; 1/0 for bool labels): a number compares by
// range gte=lte, a bool only on a bool dataset, anything else never matches (is_empty on _idx,
// which every row holds).
#include "backends/qdrant/qdrantfilter.hpp"

#include <algorithm>
#include <optional>

#include "src/errors.hpp"

namespace vstash::backends::qdrant {

namespace {

using Kind = FilterNode::Kind;

struct Part {
  std::optional<json> condition;  // nullopt: no constraint
  bool exact = true;
};

json eq_condition(const std::string& path, const json& value) {
  if (value.is_number()) {
    const double x = value.get<double>();
    return json{{"key", path}, {"range", {{"gte", x}, {"lte", x}}}};
  }
  return json{{"key", path}, {"match", {{"value", value}}}};
}

json in_condition(const std::string& path, const json& values) {
  json strings = json::array();
  json should = json::array();
  for (const auto& v : values) {
    if (v.is_string()) {
      if (std::find(strings.begin(), strings.end(), v) == strings.end()) {
        strings.push_back(v);
      }
    } else {
      should.push_back(eq_condition(path, v));
    }
  }
  if (!strings.empty()) {
    should.push_back(json{{"key", path}, {"match", {{"any", strings}}}});
  }
  if (should.size() == 1) {
    return should[0];
  }
  return json{{"should", should}};
}

// A payload path: prefix + the key, quoted unless it is a plain segment; empty when the key
// cannot be written (empty, or holding a '"', which Qdrant's quoted keys cannot contain).
std::string key_path(std::string_view prefix, const std::string& key) {
  if (key.empty() || key.find('"') != std::string::npos) {
    return "";
  }
  const bool plain = std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  return std::string(prefix) + (plain ? key : "\"" + key + "\"");
}

json never() { return json{{"is_empty", {{"key", "_idx"}}}}; }

json label_eq(const json& v, bool is_bool) {
  if (is_bool ? !v.is_boolean() : !v.is_number()) {
    return never();
  }
  const double x = is_bool ? (v.get<bool>() ? 1.0 : 0.0) : v.get<double>();
  return json{{"key", "label"}, {"range", {{"gte", x}, {"lte", x}}}};
}

Part translate_label(const FilterNode& n, bool is_bool) {
  auto any = [&] {
    json should = json::array();
    for (const auto& v : n.value) {
      should.push_back(label_eq(v, is_bool));
    }
    return should.size() == 1 ? should[0] : json{{"should", should}};
  };
  switch (n.kind) {
    case Kind::eq:
      return {label_eq(n.value, is_bool), true};
    case Kind::ne:
      return {json{{"must_not", json::array({label_eq(n.value, is_bool)})}}, true};
    case Kind::in:
      return {any(), true};
    case Kind::nin:
      return {json{{"must_not", json::array({any()})}}, true};
    case Kind::gt:
    case Kind::gte:
    case Kind::lt:
    case Kind::lte: {
      if (is_bool) {
        return {never(), true};
      }
      const char* op = n.kind == Kind::gt ? "gt" : n.kind == Kind::gte ? "gte" : n.kind == Kind::lt ? "lt" : "lte";
      return {json{{"key", "label"}, {"range", {{op, n.value.get<double>()}}}}, true};
    }
    default:
      return {never(), true};
  }
}

Part translate(const FilterNode& n, bool aids, bool is_bool) {
  if (n.kind != Kind::and_ && n.kind != Kind::or_ && n.key == k_label_key) {
    return translate_label(n, is_bool);
  }
  if (n.kind == Kind::and_) {
    json must = json::array();
    bool exact = true;
    for (const auto& c : n.children) {
      Part p = translate(c, aids, is_bool);
      exact = exact && p.exact;
      if (p.condition) {
        must.push_back(std::move(*p.condition));
      }
    }
    if (must.empty()) {
      return {std::nullopt, exact};
    }
    return {json{{"must", must}}, exact};
  }
  if (n.kind == Kind::or_) {
    json should = json::array();
    bool exact = true;
    for (const auto& c : n.children) {
      Part p = translate(c, aids, is_bool);
      exact = exact && p.exact;
      if (!p.condition) {
        return {std::nullopt, false};
      }
      should.push_back(std::move(*p.condition));
    }
    return {json{{"should", should}}, exact};
  }
  const std::string path = metadata_path(n.key);
  if (path.empty()) {
    return {std::nullopt, false};
  }
  switch (n.kind) {
    case Kind::eq:
      return {eq_condition(path, n.value), true};
    case Kind::ne:
      return {json{{"must_not", json::array({eq_condition(path, n.value)})}}, true};
    case Kind::in:
      return {in_condition(path, n.value), true};
    case Kind::nin:
      return {json{{"must_not", json::array({in_condition(path, n.value)})}}, true};
    case Kind::gt:
    case Kind::gte:
    case Kind::lt:
    case Kind::lte: {
      const char* op = n.kind == Kind::gt ? "gt" : n.kind == Kind::gte ? "gte" : n.kind == Kind::lt ? "lt" : "lte";
      if (aids) {
        return {json{{"key", key_path("_num.", n.key)}, {"range", {{op, n.value.get<double>()}}}}, true};
      }
      return {json{{"key", path}, {"range", {{op, n.value.get<double>()}}}}, false};
    }
    case Kind::exists: {
      if (aids) {
        const json has = {{"key", "_keys"}, {"match", {{"value", n.key}}}};
        return {n.value.get<bool>() ? has : json{{"must_not", json::array({has})}}, true};
      }
      if (n.value.get<bool>()) {
        return {std::nullopt, false};
      }
      return {json{{"is_empty", {{"key", path}}}}, false};
    }
    default:
      return {std::nullopt, false};
  }
}

bool is_filter_object(const json& j) {
  for (const auto& [k, v] : j.items()) {
    if (k != "must" && k != "should" && k != "must_not" && k != "min_should") {
      return false;
    }
  }
  return j.is_object();
}

}  // namespace

std::string metadata_path(const std::string& key) { return key_path("metadata.", key); }

TranslatedFilter translate_filter(const Filter* filter, bool aids, const DatasetSpec* spec) {
  TranslatedFilter out;
  if (filter == nullptr || filter->empty()) {
    return out;
  }
  bool is_bool = false;
  if (filter->uses_label()) {
    if (spec == nullptr) {
      throw Error("filter: $label used where the dataset's spec is not known");
    }
    check_label_filter(filter, spec->name, spec->label_dtype, spec->label_shape);
    is_bool = *spec->label_dtype == DType::b1;
  }
  Part p = translate(filter->root(), aids, is_bool);
  out.exact = p.exact;
  if (p.condition) {
    // A bare field condition must be wrapped: the top level is a Filter object.
    out.filter = is_filter_object(*p.condition) ? *p.condition : json{{"must", json::array({*p.condition})}};
  }
  return out;
}

json payload_label(const json& payload, const Filter& filter, const DatasetSpec& spec) {
  if (!filter.uses_label() || !payload.is_object()) {
    return nullptr;
  }
  const json label = payload.value("label", json());
  if (spec.label_dtype == DType::b1 && label.is_number()) {
    return json(label.get<double>() != 0);
  }
  return label.is_number() ? label : json();
}

json filter_and(const json& a, const json& b) {
  json must = json::array();
  for (const json* f : {&a, &b}) {
    if (!f->is_null() && !(f->is_object() && f->empty())) {
      must.push_back(*f);
    }
  }
  if (must.empty()) {
    return json::object();
  }
  if (must.size() == 1 && is_filter_object(must[0])) {
    return must[0];
  }
  return json{{"must", must}};
}

}  // namespace vstash::backends::qdrant
