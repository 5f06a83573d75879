// SPDX-License-Identifier: MIT
// Filter -> SQL over jsonb, with the exact semantics of src/filter.hpp:
// - a missing field and a JSON null are "absent" (Filter::matches treats null as missing);
// - $eq uses jsonb containment, which compares numbers by value (1 = 1.0), never matches
//   across JSON types, and lets an array field match when any top-level element matches;
// - $gt.. compare only when jsonb_typeof says "number" (CASE keeps the cast from running
//   on strings).
#include "pgfilter.hpp"

#include <fmt/format.h>

#include "../../src/errors.hpp"

namespace vstash::backends::pgvector {

namespace {

using Kind = FilterNode::Kind;

class Translator {
 public:
  Translator(std::string column, int first) : m_column(std::move(column)), m_next(first) {}

  std::string node(const FilterNode& n) {
    switch (n.kind) {
      case Kind::and_:
      case Kind::or_: return group(n);
      case Kind::eq: return fmt::format("COALESCE({} @> {}::jsonb, false)", field(n.key), bind_json(n.value));
      case Kind::ne:
        return fmt::format("NOT COALESCE({} @> {}::jsonb, false)", field(n.key), bind_json(n.value));
      case Kind::in: return any_of(n);
      case Kind::nin: return "NOT " + any_of(n);
      case Kind::exists: {
        const std::string present = fmt::format("COALESCE(jsonb_typeof({}) <> 'null', false)", field(n.key));
        return n.value.get<bool>() ? present : "NOT " + present;
      }
      case Kind::gt:
      case Kind::gte:
      case Kind::lt:
      case Kind::lte: return compare(n);
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
    return fmt::format("(CASE WHEN jsonb_typeof({0} -> {1}::text) = 'number' THEN ({0} ->> {1}::text)::numeric {2} "
                       "{3}::numeric ELSE false END)",
                       m_column, key, op, bind_json(n.value));
  }

  std::string m_column;
  int m_next;
  std::vector<std::string> m_params;
};

}  // namespace

SqlFilter translate_filter(const Filter* filter, const std::string& column, int first_param) {
  SqlFilter out;
  if (filter == nullptr || filter->empty()) {
    return out;
  }
  Translator t(column, first_param);
  out.sql = t.node(filter->root());
  out.params = t.take_params();
  return out;
}

}  // namespace vstash::backends::pgvector
