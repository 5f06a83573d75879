// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include "src/errors.hpp"
#include "src/filter.hpp"

using vstash::Filter;
using json = nlohmann::json;

TEST_SUITE("filter::Filter") {
  TEST_CASE("shorthand equality matches only the same value and type") {
    auto f = Filter::parse(R"({"genre": "drama"})");
    CHECK(f.matches(json{{"genre", "drama"}}));
    CHECK_FALSE(f.matches(json{{"genre", "comedy"}}));
    CHECK_FALSE(f.matches(json::object()));
    CHECK_FALSE(Filter::parse(R"({"n": "1"})").matches(json{{"n", 1}}));
  }
  TEST_CASE("numbers compare numerically across int and float") {
    CHECK(Filter::parse(R"({"n": 1})").matches(json{{"n", 1.0}}));
    auto f = Filter::parse(R"({"year": {"$gte": 2019, "$lt": 2024}})");
    CHECK(f.matches(json{{"year", 2019}}));
    CHECK(f.matches(json{{"year", 2023.5}}));
    CHECK_FALSE(f.matches(json{{"year", 2024}}));
    CHECK_FALSE(f.matches(json{{"year", "2020"}}));
  }
  TEST_CASE("$ne and $nin also match records without the field") {
    CHECK(Filter::parse(R"({"a": {"$ne": 1}})").matches(json::object()));
    CHECK(Filter::parse(R"({"a": {"$nin": [1, 2]}})").matches(json{{"b", 1}}));
    CHECK_FALSE(Filter::parse(R"({"a": {"$nin": [1, 2]}})").matches(json{{"a", 2}}));
  }
  TEST_CASE("array fields match when any element matches") {
    auto f = Filter::parse(R"({"tags": {"$in": ["x", "y"]}})");
    CHECK(f.matches(json{{"tags", {"a", "y"}}}));
    CHECK_FALSE(f.matches(json{{"tags", {"a", "b"}}}));
    CHECK(Filter::parse(R"({"tags": "a"})").matches(json{{"tags", {"a", "b"}}}));
  }
  TEST_CASE("$and, $or and $exists combine") {
    auto f = Filter::parse(R"({"$or": [{"a": 1}, {"$and": [{"b": {"$exists": true}}, {"c": {"$exists": false}}]}]})");
    CHECK(f.matches(json{{"a", 1}}));
    CHECK(f.matches(json{{"b", 0}}));
    CHECK_FALSE(f.matches(json{{"b", 0}, {"c", 0}}));
    CHECK(Filter::parse("{}").empty());
    CHECK(Filter::parse("{}").matches(json::object()));
  }
  TEST_CASE("malformed filters name the operator and the path") {
    auto msg = [](const char* text) {
      try {
        Filter::parse(text);
      } catch (const vstash::UsageError& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    };
    CHECK(msg(R"({"year": {"$gte": "x"}})") == R"(filter: $.year.$gte: $gte expects a number, got "x")");
    CHECK(msg(R"({"a": {"$foo": 1}})").find("unknown operator \"$foo\"") != std::string::npos);
    CHECK(msg(R"({"$or": {}})").find("$.$or") != std::string::npos);
    CHECK(msg("[1]").find("expects an object") != std::string::npos);
    CHECK(msg("{").find("filter: invalid JSON") != std::string::npos);
    CHECK(msg(R"({"a": {"$in": []}})").find("non-empty array") != std::string::npos);
  }
  TEST_CASE("canonical JSON round-trips") {
    auto f = Filter::parse(R"({"a": 1, "b": {"$in": ["x"]}})");
    auto g = Filter::from_json(f.to_json());
    CHECK(g.to_json() == f.to_json());
  }
  TEST_CASE("$label addresses the row's label, not a metadata field") {
    auto f = Filter::parse(R"({"$label": {"$in": [3, 5]}})");
    CHECK(f.uses_label());
    CHECK_FALSE(Filter::parse(R"({"label": 3})").uses_label());
    CHECK(f.matches(json::object(), json(3)));
    CHECK(f.matches(json::object(), json(5.0)));
    CHECK_FALSE(f.matches(json::object(), json(4)));
    CHECK_FALSE(f.matches(json{{"$label", 3}, {"label", 3}}, json(4)));
    CHECK(Filter::parse(R"({"$label": {"$gte": 2, "$lt": 4}})").matches(json(), json(3)));
    CHECK(Filter::parse(R"({"$label": {"$ne": 3}})").matches(json(), json(2)));
    CHECK(Filter::parse(R"({"$label": true})").matches(json(), json(true)));
    CHECK_FALSE(Filter::parse(R"({"$label": 1})").matches(json(), json(true)));
    CHECK(Filter::parse(R"({"$or": [{"a": 1}, {"$label": 7}]})").uses_label());
    auto g = Filter::from_json(f.to_json());
    CHECK(g.to_json() == f.to_json());
    CHECK(g.uses_label());
  }
  TEST_CASE("$label values decode every dtype and refuse datasets without scalar labels") {
    const int64_t i = -7;
    const float x = 0.1f;
    const uint8_t t = 1;
    CHECK(vstash::label_value(vstash::DType::i64, reinterpret_cast<const std::byte*>(&i)) == json(-7));
    CHECK(vstash::label_value(vstash::DType::f32, reinterpret_cast<const std::byte*>(&x)) ==
          json(static_cast<double>(0.1f)));
    CHECK(vstash::label_value(vstash::DType::b1, reinterpret_cast<const std::byte*>(&t)) == json(true));
    auto f = Filter::parse(R"({"$label": 1})");
    CHECK_THROWS_WITH_AS(vstash::check_label_filter(&f, "d", std::nullopt, {}),
                         "dataset \"d\": filter: $label needs labels, and this dataset has none", vstash::UsageError);
    CHECK_THROWS_WITH_AS(vstash::check_label_filter(&f, "d", vstash::DType::i64, {2}),
                         "dataset \"d\": filter: $label needs scalar labels, and this dataset's are int64 (2,)",
                         vstash::UsageError);
    CHECK_NOTHROW(vstash::check_label_filter(&f, "d", vstash::DType::i64, {}));
    auto m = Filter::parse(R"({"a": 1})");
    CHECK_NOTHROW(vstash::check_label_filter(&m, "d", std::nullopt, {}));
    CHECK_THROWS_AS(Filter::parse(R"({"$label": {"$exists": true}})"), vstash::UsageError);
    CHECK_THROWS_AS(Filter::parse(R"({"$labels": 1})"), vstash::UsageError);
  }
}
