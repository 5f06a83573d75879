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
}
