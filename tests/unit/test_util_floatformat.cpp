// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <bit>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include "src/util/floatformat.hpp"

using vstash::util::append_double;
using vstash::util::append_float;
using vstash::util::append_float_array;

namespace {

float parse_float(const std::string& s) {
  float v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  REQUIRE(ec == std::errc());
  REQUIRE(ptr == s.data() + s.size());
  return v;
}

std::string fmt_float(float v) {
  std::string s;
  append_float(s, v);
  return s;
}

}  // namespace

TEST_SUITE("util::floatformat") {
  TEST_CASE("edge values round trip bit for bit") {
    const float values[] = {0.0f,
                            -0.0f,
                            1.0f,
                            -1.0f,
                            0.1f,
                            1.0f / 3.0f,
                            FLT_MIN,
                            -FLT_MIN,
                            FLT_MAX,
                            -FLT_MAX,
                            std::numeric_limits<float>::denorm_min(),
                            16777216.0f,
                            16777217.0f,
                            1e-45f,
                            3.4028235e38f,
                            1e-7f,
                            123456789.0f};
    for (float v : values) {
      CAPTURE(v);
      CHECK(std::bit_cast<uint32_t>(parse_float(fmt_float(v))) == std::bit_cast<uint32_t>(v));
    }
  }
  TEST_CASE("the text is the shortest form") {
    CHECK(fmt_float(0.1f) == "0.1");
    CHECK(fmt_float(1.0f) == "1");
    CHECK(fmt_float(-2.5f) == "-2.5");
    std::string d;
    append_double(d, 0.1);
    CHECK(d == "0.1");
  }
  TEST_CASE("a million random bit patterns round trip exactly") {
    std::mt19937 rng(12345);
    int checked = 0;
    for (int i = 0; i < 1'000'000; ++i) {
      float v = std::bit_cast<float>(static_cast<uint32_t>(rng()));
      if (!std::isfinite(v)) {
        continue;
      }
      ++checked;
      float back = parse_float(fmt_float(v));
      if (std::bit_cast<uint32_t>(back) != std::bit_cast<uint32_t>(v)) {
        FAIL("mismatch for " << fmt_float(v));
      }
    }
    CHECK(checked > 990'000);
  }
  TEST_CASE("arrays are valid json that a json parser reads back to the same floats") {
    std::mt19937 rng(3);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> v(257);
    for (auto& x : v) {
      x = dist(rng);
    }
    v[3] = 1e-30f;
    v[4] = -0.0f;
    std::string out = "x";
    append_float_array(out, v.data(), v.size());
    REQUIRE(out[0] == 'x');
    auto j = nlohmann::json::parse(out.substr(1));
    REQUIRE(j.size() == v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      CHECK(static_cast<float>(j[i].get<double>()) == v[i]);
    }
    std::string empty;
    append_float_array(empty, nullptr, 0);
    CHECK(empty == "[]");
  }
}
