// SPDX-License-Identifier: MIT
// JSON Lines input: records (id, vector/values, label, metadata), metadata-only files, standard
// input, and errors that name file:line.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>

#include "src/errors.hpp"
#include "src/io/jsonl.hpp"
#include "tests/testutil.hpp"

using namespace vstash;

namespace {

std::string write_file(const std::string& name, const std::string& text) {
  const auto path = testutil::scratch_dir("jsonl") / name;
  std::ofstream out(path, std::ios::binary);
  out << text;
  return path.string();
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("NOT A USAGE ERROR: ") + e.what();
  }
  return "NO ERROR";
}

// Feeds text to std::cin for the lifetime of the object.
class StdinFrom {
 public:
  explicit StdinFrom(const std::string& text) : m_in(text), m_old(std::cin.rdbuf(m_in.rdbuf())) {}
  ~StdinFrom() {
    std::cin.rdbuf(m_old);
    std::cin.clear();
  }

 private:
  std::istringstream m_in;
  std::streambuf* m_old;
};

}  // namespace

TEST_SUITE("io::jsonl") {
  TEST_CASE("records with ids, vectors, labels and metadata") {
    const auto path =
        write_file("r.jsonl",
                   "{\"id\": \"a\", \"vector\": [1, 2.5, -3], \"label\": 4, \"metadata\": {\"k\": \"v\"}}\n"
                   "\n"
                   "{\"id\": 17, \"values\": [0.5, 0, 1e3]}\n"
                   "  \t \n"
                   "{\"vector\": [1], \"id\": null, \"metadata\": null, \"label\": \"cat\"}");
    const auto records = io::read_jsonl(path);
    REQUIRE(records.size() == 3);
    CHECK(records[0].id == "a");
    CHECK(records[0].vector == std::vector<double>{1, 2.5, -3});
    CHECK(records[0].label == 4);
    CHECK(records[0].metadata == nlohmann::json({{"k", "v"}}));
    CHECK(records[1].id == "17");  // integer ids name the same row as their text
    CHECK(records[1].vector == std::vector<double>{0.5, 0, 1000});
    CHECK(records[1].label.is_null());
    CHECK(records[1].metadata.is_null());
    CHECK(!records[2].id.has_value());
    CHECK(records[2].label == "cat");
  }

  TEST_CASE("a byte order mark and Windows line ends are tolerated") {
    const auto path = write_file("bom.jsonl", "\xef\xbb\xbf{\"vector\": [1, 2]}\r\n{\"vector\": [3, 4]}\r\n");
    const auto records = io::read_jsonl(path);
    REQUIRE(records.size() == 2);
    CHECK(records[1].vector == std::vector<double>{3, 4});
  }

  TEST_CASE("every bad record is an error naming file:line") {
    const std::pair<std::string, std::string> cases[] = {
        {"{\"vector\": [1, 2}", "invalid JSON: "},
        {"[1, 2, 3]", "expected a JSON object, got array"},
        {"{\"id\": \"a\"}", "missing \"vector\""},
        {"{\"vector\": []}", "\"vector\" must be a non-empty array of numbers"},
        {"{\"vector\": \"1,2\"}", "\"vector\" must be a non-empty array of numbers"},
        {"{\"vector\": [1, \"2\"]}", "\"vector\"[1] is string, not a number"},
        {"{\"vector\": [1], \"values\": [2]}", "give \"vector\" or \"values\", not both"},
        {"{\"vector\": [1], \"id\": true}", "\"id\" must be a string or an integer, got boolean"},
        {"{\"vector\": [1], \"metadata\": [1]}", "\"metadata\" must be an object, got array"},
        {"{\"vector\": [1], \"colour\": 1}", "unknown key \"colour\" (expected id, vector, label, metadata)"},
    };
    for (const auto& [line, expect] : cases) {
      CAPTURE(line);
      const auto path = write_file("bad.jsonl", "{\"vector\": [0]}\n\n" + line + "\n");
      const std::string msg = error_of([&] { io::read_jsonl(path); });
      CHECK(msg.find(path + ":3: " + expect) == 0);
    }
  }

  TEST_CASE("a missing file is a usage error naming it") {
    const auto path = (testutil::scratch_dir("jsonl-missing") / "none.jsonl").string();
    CHECK(error_of([&] { io::read_jsonl(path); }).find(path + ": cannot open") == 0);
    CHECK(error_of([&] { io::read_jsonl_objects(path); }).find(path + ": cannot open") == 0);
  }

  TEST_CASE("\"-\" reads standard input and errors name <stdin>") {
    {
      StdinFrom in("{\"id\": \"x\", \"vector\": [1, 2]}\n{\"id\": \"y\", \"vector\": [3, 4]}\n");
      const auto records = io::read_jsonl("-");
      REQUIRE(records.size() == 2);
      CHECK(records[1].id == "y");
    }
    {
      StdinFrom in("{\"a\": 1}\nnot json\n");
      CHECK(error_of([] { io::read_jsonl_objects("-"); }).find("<stdin>:2: invalid JSON") == 0);
    }
  }

  TEST_CASE("metadata files: one object per row, blank lines only at the end") {
    const auto path = write_file("m.jsonl", "{\"a\": 1}\n{}\n{\"tags\": [\"x\"], \"n\": {\"d\": 2}}\n\n\n");
    const auto objects = io::read_jsonl_objects(path);
    REQUIRE(objects.size() == 3);
    CHECK(objects[0] == nlohmann::json({{"a", 1}}));
    CHECK(objects[1] == nlohmann::json::object());
    CHECK(objects[2]["n"]["d"] == 2);
    const auto gap = write_file("gap.jsonl", "{\"a\": 1}\n\n{\"a\": 2}\n");
    CHECK(error_of([&] { io::read_jsonl_objects(gap); }) == gap + ":2: empty line (one JSON object per row expected)");
    const auto scalar = write_file("scalar.jsonl", "{\"a\": 1}\n42\n");
    CHECK(error_of([&] { io::read_jsonl_objects(scalar); }) == scalar + ":2: expected a JSON object, got number");
  }
}
