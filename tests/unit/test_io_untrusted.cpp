// SPDX-License-Identifier: MIT
// Bounded reads and JSON parsing of untrusted input (src/io/untrusted.hpp): the depth limit
// counts only structure (not brackets inside strings), accepts exactly the limit, and every
// failure is a one-line UsageError naming the source; the filter parser refuses deep trees
// built in memory too.
#include <doctest/doctest.h>

#include <fstream>
#include <functional>
#include <string>

#include "src/errors.hpp"
#include "src/filter.hpp"
#include "src/io/untrusted.hpp"
#include "tests/testutil.hpp"

using namespace vstash;

namespace {

std::string usage_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no error";
}

std::string arrays(int depth) {
  return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']');
}

}  // namespace

TEST_SUITE("io::untrusted") {
  TEST_CASE("nesting up to the limit parses, one level more is refused before parsing") {
    CHECK(io::parse_untrusted_json(arrays(io::k_max_json_depth), "x").is_array());
    CHECK(usage_error_of([] { io::parse_untrusted_json(arrays(io::k_max_json_depth + 1), "--filter"); }) ==
          "--filter: JSON nested deeper than 64 levels (the limit)");
    // 100,000 levels: refused at once, no stack overflow, no allocation per level.
    CHECK(usage_error_of([] { io::parse_untrusted_json(arrays(100000), "f.jsonl:3"); }).rfind("f.jsonl:3: ", 0) == 0);
  }

  TEST_CASE("brackets inside strings, and escaped quotes, do not count") {
    const std::string deep_text = "\"" + std::string(200, '[') + "\\\"" + std::string(200, '{') + "\"";
    CHECK(io::parse_untrusted_json("{\"a\": " + deep_text + "}", "x")["a"].get<std::string>().size() == 401);
  }

  TEST_CASE("malformed text and out-of-range numbers are usage errors without the library's tag") {
    const auto bad = usage_error_of([] { io::parse_untrusted_json("{\"a\":", "--metadata"); });
    CHECK(bad.rfind("--metadata: invalid JSON: ", 0) == 0);
    CHECK(bad.find("json.exception") == std::string::npos);
    const auto big = usage_error_of([] { io::parse_untrusted_json("{\"n\":{\"$gt\":1e400}}", "--filter"); });
    CHECK(big.rfind("--filter: invalid JSON: ", 0) == 0);
    CHECK(big.find("1e400") != std::string::npos);
    CHECK(big.find("json.exception") == std::string::npos);
  }

  TEST_CASE("a small file is read whole; a longer one, or a device, is refused at the bound") {
    const auto path = (testutil::scratch_dir("untrusted") / "small.json").string();
    std::ofstream(path) << "[1,2,3]";
    CHECK(io::read_small_file(path, 7, "--vector") == "[1,2,3]");
    CHECK(usage_error_of([&] { io::read_small_file(path, 6, "--vector"); }).find("larger than") != std::string::npos);
    CHECK(usage_error_of([] { io::read_small_file("/dev/zero", size_t{1} << 20, "--filter"); }) ==
          "--filter \"/dev/zero\": larger than 1 MiB (the limit for --filter)");
    CHECK(usage_error_of([] { io::read_small_file("/no/such/file", 10, "--filter"); }).find("cannot read") !=
          std::string::npos);
  }

  TEST_CASE("a filter built in memory deeper than the limit is refused, not recursed into") {
    nlohmann::json j = {{"a", 1}};
    for (int i = 0; i < 1000; ++i) {
      j = {{"$and", nlohmann::json::array({j})}};
    }
    CHECK(usage_error_of([&] { Filter::from_json(j); }).find("nested deeper than 64 levels") != std::string::npos);
  }
}
