// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <numeric>
#include <random>

#include "backends/http/httpclient.hpp"
#include "src/errors.hpp"

using vstash::backends::http::plan_batches;
using vstash::backends::http::url_escape;

namespace {

size_t group_bytes(const std::vector<size_t>& sizes, size_t begin, size_t end, size_t overhead, size_t sep) {
  size_t total = overhead;
  for (size_t i = begin; i < end; ++i) {
    total += sizes[i] + (i > begin ? sep : 0);
  }
  return total;
}

}  // namespace

TEST_SUITE("http::plan_batches") {
  TEST_CASE("groups are split by count when bytes allow") {
    std::vector<size_t> sizes(10, 5);
    auto plan = plan_batches(sizes, 4, 1'000'000, 10);
    REQUIRE(plan.size() == 3);
    CHECK(plan[0] == std::pair<size_t, size_t>{0, 4});
    CHECK(plan[1] == std::pair<size_t, size_t>{4, 8});
    CHECK(plan[2] == std::pair<size_t, size_t>{8, 10});
  }
  TEST_CASE("groups are split by bytes counting overhead and separators") {
    // overhead 10 + 3 items of 20 + 2 separators = 72 <= 72; a fourth would make 93.
    std::vector<size_t> sizes(7, 20);
    auto plan = plan_batches(sizes, 100, 72, 10, 1);
    REQUIRE(plan.size() == 3);
    CHECK(plan[0] == std::pair<size_t, size_t>{0, 3});
    CHECK(plan[1] == std::pair<size_t, size_t>{3, 6});
    CHECK(plan[2] == std::pair<size_t, size_t>{6, 7});
    // One byte less and only two fit.
    CHECK(plan_batches(sizes, 100, 71, 10, 1)[0] == std::pair<size_t, size_t>{0, 2});
  }
  TEST_CASE("random sizes are covered in order and every group respects both limits") {
    std::mt19937 rng(7);
    std::uniform_int_distribution<size_t> dist(1, 900);
    std::vector<size_t> sizes(5000);
    for (auto& s : sizes) {
      s = dist(rng);
    }
    auto plan = plan_batches(sizes, 37, 10'000, 120, 1);
    size_t expected_begin = 0;
    for (size_t g = 0; g < plan.size(); ++g) {
      auto [b, e] = plan[g];
      CHECK(b == expected_begin);
      CHECK(e > b);
      CHECK(e - b <= 37);
      CHECK(group_bytes(sizes, b, e, 120, 1) <= 10'000);
      // Greedy: the next item would not have fitted.
      if (e < sizes.size()) {
        CHECK((e - b == 37 || group_bytes(sizes, b, e + 1, 120, 1) > 10'000));
      }
      expected_begin = e;
    }
    CHECK(expected_begin == sizes.size());
  }
  TEST_CASE("an item that cannot fit alone is a usage error naming it") {
    std::vector<size_t> sizes{10, 10, 95, 10};
    try {
      plan_batches(sizes, 10, 100, 10);
      FAIL("expected UsageError");
    } catch (const vstash::UsageError& e) {
      CHECK(std::string(e.what()).find("item 2") != std::string::npos);
    }
  }
  TEST_CASE("an empty input gives an empty plan and zero max_items means no count limit") {
    CHECK(plan_batches({}, 10, 100, 10).empty());
    std::vector<size_t> sizes(50, 1);
    CHECK(plan_batches(sizes, 0, 1'000, 0).size() == 1);
  }
}

TEST_SUITE("http::url_escape") {
  TEST_CASE("reserved characters are percent-encoded and a space is %20") {
    CHECK(url_escape("a b") == "a%20b");
    CHECK(url_escape("doc1#0") == "doc1%230");
    CHECK(url_escape("a+b/c?d&e") == "a%2Bb%2Fc%3Fd%26e");
    CHECK(url_escape("Az09-._~") == "Az09-._~");
    CHECK(url_escape("é") == "%C3%A9");
  }
}
