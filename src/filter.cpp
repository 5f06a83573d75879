// SPDX-License-Identifier: MIT
#include "src/filter.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>

#include "src/errors.hpp"
#include "src/io/untrusted.hpp"

namespace vstash {

using json = nlohmann::json;
using Kind = FilterNode::Kind;

namespace {

struct OpName {
  std::string_view name;
  Kind kind;
};
constexpr OpName k_ops[] = {
    {"$and", Kind::and_}, {"$or", Kind::or_},  {"$eq", Kind::eq},         {"$ne", Kind::ne},
    {"$gt", Kind::gt},    {"$gte", Kind::gte}, {"$lt", Kind::lt},         {"$lte", Kind::lte},
    {"$in", Kind::in},    {"$nin", Kind::nin}, {"$exists", Kind::exists},
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw UsageError(fmt::format("filter: {}: {}", path, what));
}

std::string describe(const json& v) {
  std::string s = v.dump();
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

bool is_scalar(const json& v) { return v.is_string() || v.is_number() || v.is_boolean(); }

FilterNode parse_object(const json& j, const std::string& path, int depth);

FilterNode parse_operator(const std::string& key, const std::string& op, const json& v, const std::string& path) {
  FilterNode n;
  n.key = key;
  auto it = std::find_if(std::begin(k_ops), std::end(k_ops), [&](const OpName& o) { return o.name == op; });
  if (it == std::end(k_ops) || it->kind == Kind::and_ || it->kind == Kind::or_) {
    fail(path, fmt::format("unknown operator \"{}\" (expected $eq $ne $gt $gte $lt $lte $in $nin $exists)", op));
  }
  n.kind = it->kind;
  switch (n.kind) {
    case Kind::eq:
    case Kind::ne:
      if (!is_scalar(v)) {
        fail(path, fmt::format("{} expects a string, number or bool, got {}", op, describe(v)));
      }
      break;
    case Kind::gt:
    case Kind::gte:
    case Kind::lt:
    case Kind::lte:
      if (!v.is_number()) {
        fail(path, fmt::format("{} expects a number, got {}", op, describe(v)));
      }
      break;
    case Kind::in:
    case Kind::nin:
      if (!v.is_array() || v.empty()) {
        fail(path, fmt::format("{} expects a non-empty array, got {}", op, describe(v)));
      }
      for (const auto& e : v) {
        if (!e.is_string() && !e.is_number()) {
          fail(path, fmt::format("{} values must be strings or numbers, got {}", op, describe(e)));
        }
      }
      break;
    case Kind::exists:
      if (key == k_label_key) {
        fail(path, "$exists is not supported on $label (every row of a labelled dataset has a label)");
      }
      if (!v.is_boolean()) {
        fail(path, fmt::format("$exists expects true or false, got {}", describe(v)));
      }
      break;
    default:
      break;
  }
  n.value = v;
  return n;
}

FilterNode parse_field(const std::string& key, const json& v, const std::string& path) {
  if (key.empty()) {
    fail(path, "empty field name");
  }
  if (!v.is_object()) {
    if (!is_scalar(v)) {
      fail(path, fmt::format("expects a string, number, bool or an operator object, got {}", describe(v)));
    }
    return parse_operator(key, "$eq", v, path);
  }
  if (v.empty()) {
    fail(path, "empty operator object");
  }
  FilterNode all;
  all.kind = Kind::and_;
  for (const auto& [op, arg] : v.items()) {
    if (op.empty() || op[0] != '$') {
      fail(path, fmt::format("nested objects are not supported (\"{}\"); use an operator such as $eq", op));
    }
    all.children.push_back(parse_operator(key, op, arg, path + "." + op));
  }
  if (all.children.size() == 1) {
    return std::move(all.children.front());
  }
  return all;
}

// depth counts $and/$or levels: a filter built in memory (not parsed from text, which
// untrusted.hpp bounds) must not recurse without limit either.
FilterNode parse_object(const json& j, const std::string& path, int depth) {
  if (depth > io::k_max_json_depth) {
    throw UsageError(fmt::format("filter: nested deeper than {} levels (the limit)", io::k_max_json_depth));
  }
  if (!j.is_object()) {
    fail(path, fmt::format("expects an object, got {}", describe(j)));
  }
  FilterNode all;
  all.kind = Kind::and_;
  for (const auto& [key, v] : j.items()) {
    const std::string p = path + "." + key;
    if (key == "$and" || key == "$or") {
      if (!v.is_array() || v.empty()) {
        fail(p, fmt::format("{} expects a non-empty array of filters", key));
      }
      FilterNode group;
      group.kind = key == "$and" ? Kind::and_ : Kind::or_;
      size_t i = 0;
      for (const auto& sub : v) {
        group.children.push_back(parse_object(sub, fmt::format("{}[{}]", p, i++), depth + 1));
      }
      all.children.push_back(std::move(group));
    } else if (!key.empty() && key[0] == '$' && key != k_label_key) {
      fail(p, fmt::format("unknown operator \"{}\" at the top level (expected $and, $or or $label)", key));
    } else {
      all.children.push_back(parse_field(key, v, p));
    }
  }
  if (all.children.size() == 1) {
    return std::move(all.children.front());
  }
  return all;
}

bool scalar_equal(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) {
    return a.get<double>() == b.get<double>();
  }
  return a.type() == b.type() && a == b;
}

// Any element of an array field, or the field itself, equals one of wanted.
bool field_matches_any(const json& field, const json& wanted_list) {
  auto one = [&](const json& f) {
    for (const auto& w : wanted_list) {
      if (scalar_equal(f, w)) {
        return true;
      }
    }
    return false;
  };
  if (field.is_array()) {
    for (const auto& e : field) {
      if (one(e)) {
        return true;
      }
    }
    return false;
  }
  return one(field);
}

bool names_label(const FilterNode& n) {
  if (n.kind != Kind::and_ && n.kind != Kind::or_) {
    return n.key == k_label_key;
  }
  return std::any_of(n.children.begin(), n.children.end(), names_label);
}

bool eval(const FilterNode& n, const json& md, const json& label) {
  const json* field = nullptr;
  if (n.kind != Kind::and_ && n.kind != Kind::or_) {
    if (n.key == k_label_key) {
      field = label.is_null() ? nullptr : &label;
    } else if (md.is_object()) {
      auto it = md.find(n.key);
      if (it != md.end() && !it->is_null()) {
        field = &*it;
      }
    }
  }
  switch (n.kind) {
    case Kind::and_:
      for (const auto& c : n.children) {
        if (!eval(c, md, label)) {
          return false;
        }
      }
      return true;
    case Kind::or_:
      for (const auto& c : n.children) {
        if (eval(c, md, label)) {
          return true;
        }
      }
      return false;
    case Kind::eq:
      return field && field_matches_any(*field, json::array({n.value}));
    case Kind::ne:
      return !(field && field_matches_any(*field, json::array({n.value})));
    case Kind::in:
      return field && field_matches_any(*field, n.value);
    case Kind::nin:
      return !(field && field_matches_any(*field, n.value));
    case Kind::exists:
      return (field != nullptr) == n.value.get<bool>();
    case Kind::gt:
    case Kind::gte:
    case Kind::lt:
    case Kind::lte: {
      if (!field || !field->is_number()) {
        return false;
      }
      const double a = field->get<double>();
      const double b = n.value.get<double>();
      return n.kind == Kind::gt ? a > b : n.kind == Kind::gte ? a >= b : n.kind == Kind::lt ? a < b : a <= b;
    }
  }
  return false;
}

json node_to_json(const FilterNode& n) {
  if (n.kind == Kind::and_ || n.kind == Kind::or_) {
    json arr = json::array();
    for (const auto& c : n.children) {
      arr.push_back(node_to_json(c));
    }
    return json{{std::string(filter_op_name(n.kind)), arr}};
  }
  return json{{n.key, json{{std::string(filter_op_name(n.kind)), n.value}}}};
}

}  // namespace

std::string_view filter_op_name(Kind k) {
  for (const auto& o : k_ops) {
    if (o.kind == k) {
      return o.name;
    }
  }
  return "?";
}

Filter Filter::parse(const std::string& text) { return from_json(io::parse_untrusted_json(text, "filter")); }

Filter Filter::from_json(const json& j) {
  Filter f;
  f.m_root = parse_object(j, "$", 0);
  f.m_uses_label = names_label(f.m_root);
  return f;
}

bool Filter::matches(const json& metadata, const json& label) const { return eval(m_root, metadata, label); }

json Filter::to_json() const {
  if (empty()) {
    return json::object();
  }
  return node_to_json(m_root);
}

json label_value(DType dtype, const std::byte* p) {
  auto get = [p]<class T>(T v) {
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  switch (dtype) {
    case DType::b1:
      return json(get(uint8_t{}) != 0);
    case DType::i8:
      return json(get(int8_t{}));
    case DType::i16:
      return json(get(int16_t{}));
    case DType::i32:
      return json(get(int32_t{}));
    case DType::i64:
      return json(get(int64_t{}));
    case DType::u8:
      return json(get(uint8_t{}));
    case DType::u16:
      return json(get(uint16_t{}));
    case DType::u32:
      return json(get(uint32_t{}));
    case DType::u64:
      return json(get(uint64_t{}));
    case DType::f16:
      return json(static_cast<double>(half_to_float(get(uint16_t{}))));
    case DType::f32:
      return json(static_cast<double>(get(float{})));
    case DType::f64:
      return json(get(double{}));
  }
  return json();
}

void check_label_filter(const Filter* filter, const std::string& dataset, const std::optional<DType>& label_dtype,
                        const Shape& label_shape) {
  if (filter == nullptr || !filter->uses_label()) {
    return;
  }
  if (!label_dtype) {
    throw UsageError(fmt::format("dataset \"{}\": filter: $label needs labels, and this dataset has none", dataset));
  }
  if (!label_shape.empty()) {
    throw UsageError(fmt::format("dataset \"{}\": filter: $label needs scalar labels, and this dataset's are {} {}",
                                 dataset, dtype_name(*label_dtype), shape_to_string(label_shape)));
  }
}

}  // namespace vstash
