// SPDX-License-Identifier: MIT
// Filter -> SQL over jsonb, with the exact semantics of src/filter.hpp:
// - a missing field and a JSON null are "absent" (Filter::matches treats null as missing);
// - $eq uses jsonb containment, which compares numbers by value (1 = 1.0), never matches
//   across JSON types, and lets an array field match when any top-level element matches;
// - $gt.. compare only when jsonb_typeof says "number" (CASE keeps the cast from running
//   on strings).
#include "backends/pgvector/pgfilter.hpp"

#include <fmt/format.h>

#include "src/errors.hpp"

namespace vstash::backends::pgvector {

namespace {

using Kind = FilterNode::Kind;

// Byte i of the bytea c.
std::string byte_at(const std::string& c, int i) { return fmt::format("get_byte({}, {})", c, i); }

// The unsigned integer of bytes [0, n) of c (little-endian), as numeric (exact for 8 bytes).
std::string unsigned_sql(const std::string& c, int n) {
  std::string out = "(" + byte_at(c, 0) + "::numeric";
  for (int i = 1; i < n; ++i) {
    out += fmt::format(" + {}::numeric * {}", byte_at(c, i), uint64_t{1} << (8 * i));
  }
  return out + ")";
}

std::string signed_sql(const std::string& c, int n) {
  const std::string range = n == 8 ? "18446744073709551616" : std::to_string(uint64_t{1} << (8 * n));
  return fmt::format("({} - CASE WHEN {} >= 128 THEN {}::numeric ELSE 0 END)", unsigned_sql(c, n), byte_at(c, n - 1),
                     range);
}

// An IEEE binary float: sign bit, exponent and mantissa fields as SQL integer expressions.
std::string float_sql(const std::string& sign, const std::string& exp, const std::string& mant, int max_exp,
                      int mant_bits, int bias) {
  const int shift = bias + mant_bits;  // value = (2^mant_bits + mant) * 2^(exp - shift)
  return fmt::format(
      "(CASE WHEN {1} THEN -1 ELSE 1 END * CASE WHEN {2} = {4} THEN (CASE WHEN {3} = 0 THEN 'Infinity' ELSE 'NaN' "
      "END)::float8 WHEN {2} = 0 THEN ({3})::float8 * power(2::float8, {0}) ELSE ({3} + {5}::bigint)::float8 * "
      "power(2::float8, {2} - {6}) END)",
      1 - shift, sign, exp, mant, max_exp, uint64_t{1} << mant_bits, shift);
}

class Translator {
 public:
  Translator(std::string column, int first, const DatasetSpec* spec, std::string label_column)
      : m_column(std::move(column)), m_next(first), m_spec(spec), m_label_column(std::move(label_column)) {}

  std::string node(const FilterNode& n) {
    if (n.key == k_label_key && n.kind != Kind::and_ && n.kind != Kind::or_) {
      return label_node(n);
    }
    switch (n.kind) {
      case Kind::and_:
      case Kind::or_:
        return group(n);
      case Kind::eq:
        return fmt::format("COALESCE({} @> {}::jsonb, false)", field(n.key), bind_json(n.value));
      case Kind::ne:
        return fmt::format("NOT COALESCE({} @> {}::jsonb, false)", field(n.key), bind_json(n.value));
      case Kind::in:
        return any_of(n);
      case Kind::nin:
        return "NOT " + any_of(n);
      case Kind::exists: {
        const std::string present = fmt::format("COALESCE(jsonb_typeof({}) <> 'null', false)", field(n.key));
        return n.value.get<bool>() ? present : "NOT " + present;
      }
      case Kind::gt:
      case Kind::gte:
      case Kind::lt:
      case Kind::lte:
        return compare(n);
    }
    return "FALSE";
  }

  std::vector<std::string> take_params() { return std::move(m_params); }

 private:
  std::string bind(std::string value) {
    m_params.push_back(std::move(value));
    return fmt::format("${}", m_next++);
  }
  // jsonb refuses the \u0000 escape that a NUL character dumps to; say so plainly.
  std::string bind_json(const nlohmann::json& value) {
    std::string text = value.dump();
    if (text.find("\\u0000") != std::string::npos) {
      throw UsageError("filter: a value contains a NUL character, which PostgreSQL jsonb cannot hold");
    }
    return bind(std::move(text));
  }
  std::string field(const std::string& key) { return fmt::format("({} -> {}::text)", m_column, bind(key)); }

  std::string group(const FilterNode& n) {
    if (n.children.empty()) {
      return n.kind == Kind::and_ ? "TRUE" : "FALSE";
    }
    std::string out = "(";
    for (size_t i = 0; i < n.children.size(); ++i) {
      if (i > 0) {
        out += n.kind == Kind::and_ ? " AND " : " OR ";
      }
      out += node(n.children[i]);
    }
    return out + ")";
  }

  std::string any_of(const FilterNode& n) {
    const std::string f = field(n.key);
    return fmt::format("EXISTS (SELECT 1 FROM jsonb_array_elements({}::jsonb) AS w(v) WHERE {} @> w.v)",
                       bind_json(n.value), f);
  }

  std::string compare(const FilterNode& n) {
    const char* op = n.kind == Kind::gt ? ">" : n.kind == Kind::gte ? ">=" : n.kind == Kind::lt ? "<" : "<=";
    const std::string key = bind(n.key);
    return fmt::format(
        "(CASE WHEN jsonb_typeof({0} -> {1}::text) = 'number' THEN ({0} ->> {1}::text)::numeric {2} "
        "{3}::numeric ELSE false END)",
        m_column, key, op, bind_json(n.value));
  }

  // $label: a bool label compares only with true/false, any other with numbers (as float8,
  // NaN never equal nor ordered, as in Filter::matches).
  std::string label_node(const FilterNode& n) {
    const bool is_bool = *m_spec->label_dtype == DType::b1;
    const std::string e =
        is_bool ? label_sql(DType::b1, m_label_column)
                : fmt::format("NULLIF({}, 'NaN'::float8)", label_sql(*m_spec->label_dtype, m_label_column));
    auto eq = [&](const nlohmann::json& v) -> std::string {
      if (is_bool ? !v.is_boolean() : !v.is_number()) {
        return "FALSE";
      }
      return fmt::format("COALESCE({} = {}::{}, false)", e, bind(v.dump()), is_bool ? "boolean" : "float8");
    };
    auto any = [&](const nlohmann::json& values) {
      std::string out;
      for (const auto& v : values) {
        const std::string one = eq(v);
        if (one != "FALSE") {
          out += (out.empty() ? "(" : " OR ") + one;
        }
      }
      return out.empty() ? std::string("FALSE") : out + ")";
    };
    switch (n.kind) {
      case Kind::eq:
        return eq(n.value);
      case Kind::ne:
        return "NOT " + eq(n.value);
      case Kind::in:
        return any(n.value);
      case Kind::nin:
        return "NOT " + any(n.value);
      case Kind::gt:
      case Kind::gte:
      case Kind::lt:
      case Kind::lte: {
        if (is_bool) {
          return "FALSE";
        }
        const char* op = n.kind == Kind::gt ? ">" : n.kind == Kind::gte ? ">=" : n.kind == Kind::lt ? "<" : "<=";
        return fmt::format("COALESCE({} {} {}::float8, false)", e, op, bind(n.value.dump()));
      }
      default:
        return "FALSE";
    }
  }

  std::string m_column;
  int m_next;
  std::vector<std::string> m_params;
  const DatasetSpec* m_spec;
  std::string m_label_column;
};

}  // namespace

std::string label_sql(DType t, const std::string& c) {
  switch (t) {
    case DType::b1:
      return fmt::format("({} <> 0)", byte_at(c, 0));
    case DType::u8:
    case DType::u16:
    case DType::u32:
    case DType::u64:
      return unsigned_sql(c, static_cast<int>(dtype_size(t))) + "::float8";
    case DType::i8:
    case DType::i16:
    case DType::i32:
    case DType::i64:
      return signed_sql(c, static_cast<int>(dtype_size(t))) + "::float8";
    case DType::f16:
      return float_sql(fmt::format("{} >= 128", byte_at(c, 1)), fmt::format("(({} & 124) >> 2)", byte_at(c, 1)),
                       fmt::format("(({} & 3) * 256 + {})", byte_at(c, 1), byte_at(c, 0)), 31, 10, 15);
    case DType::f32:
      return float_sql(fmt::format("{} >= 128", byte_at(c, 3)),
                       fmt::format("(({} & 127) * 2 + ({} >> 7))", byte_at(c, 3), byte_at(c, 2)),
                       fmt::format("(({} & 127) * 65536 + {} * 256 + {})", byte_at(c, 2), byte_at(c, 1), byte_at(c, 0)),
                       255, 23, 127);
    case DType::f64: {
      std::string mant = fmt::format("(({} & 15)::bigint * {}", byte_at(c, 6), uint64_t{1} << 48);
      for (int i = 5; i >= 0; --i) {
        mant += fmt::format(" + {}::bigint * {}", byte_at(c, i), uint64_t{1} << (8 * i));
      }
      return float_sql(fmt::format("{} >= 128", byte_at(c, 7)),
                       fmt::format("(({} & 127) * 16 + ({} >> 4))", byte_at(c, 7), byte_at(c, 6)), mant + ")", 2047, 52,
                       1023);
    }
  }
  return "NULL";
}

SqlFilter translate_filter(const Filter* filter, const std::string& column, int first_param, const DatasetSpec* spec,
                           const std::string& label_column) {
  SqlFilter out;
  if (filter == nullptr || filter->empty()) {
    return out;
  }
  if (filter->uses_label()) {
    if (spec == nullptr) {
      throw Error("filter: $label used where the dataset's spec is not known");
    }
    check_label_filter(filter, spec->name, spec->label_dtype, spec->label_shape);
  }
  Translator t(column, first_param, spec, label_column);
  out.sql = t.node(filter->root());
  out.params = t.take_params();
  return out;
}

}  // namespace vstash::backends::pgvector
