// SPDX-License-Identifier: MIT
// Split specs, the split hash (bit-exact with the Python recipe in selection.hpp).
#include <doctest/doctest.h>
#include <string>

#include "src/errors.hpp"
#include "workflows/training/selection.hpp"

using namespace vstash;
using namespace vstash::training;

TEST_SUITE("training::selection") {
  TEST_CASE("a split spec parses names, fractions and the part taken") {
    const auto spec = parse_split("train=0.8,val=0.1,test=0.1", "val");
    REQUIRE(spec.parts.size() == 3);
    CHECK(spec.parts[0].name == "train");
    CHECK(spec.parts[2].fraction == 0.1);
    CHECK(spec.take == 1);
    CHECK(parse_split("all=1", "all").parts.size() == 1);
  }

  TEST_CASE("bad split specs are one-line usage errors naming the flag") {
    CHECK_THROWS_WITH_AS(parse_split("train=0.8,val=0.1", "train"), "--split: fractions sum to 0.9, not 1", UsageError);
    CHECK_THROWS_WITH_AS(parse_split("train=0.8,train=0.2", "train"), "--split: part \"train\" is named twice",
                         UsageError);
    CHECK_THROWS_WITH_AS(parse_split("train=1.2,val=-0.2", "train"),
                         "--split: part \"val\": fraction \"-0.2\" must be a number above 0", UsageError);
    CHECK_THROWS_WITH_AS(parse_split("train=0.5,val=0", "train"),
                         "--split: part \"val\": fraction \"0\" must be a number above 0", UsageError);
    CHECK_THROWS_WITH_AS(parse_split("train=x", "train"),
                         "--split: part \"train\": fraction \"x\" must be a number above 0", UsageError);
    CHECK_THROWS_WITH_AS(parse_split("train", "train"),
                         "--split: \"train\" is not NAME=FRACTION (e.g. train=0.8,val=0.1,test=0.1)", UsageError);
    CHECK_THROWS_AS(parse_split("train=0.5,,val=0.5", "train"), UsageError);
    CHECK_THROWS_AS(parse_split("=1", "train"), UsageError);
    CHECK_THROWS_WITH_AS(parse_split("train=0.5,val=0.5", "test"),
                         "--take: \"test\" is not a part of --split \"train=0.5,val=0.5\"", UsageError);
  }

  TEST_CASE("the split hash matches the documented Python recipe") {
    // Values printed by the recipe in selection.hpp run under CPython.
    const auto spec = parse_split("train=0.8,val=0.1,test=0.1", "train");
    std::string got;
    for (int i = 0; i < 20; ++i) {
      got += std::to_string(split_of(spec, "row-" + std::to_string(i), 7));
    }
    CHECK(got == "02000101020000002000");
  }

  TEST_CASE("split fractions are roughly honoured and a row's part depends only on its id and the seed") {
    const auto spec = parse_split("a=0.5,b=0.25,c=0.25", "a");
    int counts[3] = {0, 0, 0};
    for (int i = 0; i < 20000; ++i) {
      ++counts[split_of(spec, std::to_string(i), 3)];
    }
    CHECK(counts[0] > 9500);
    CHECK(counts[0] < 10500);
    CHECK(counts[1] > 4500);
    CHECK(counts[2] > 4500);
    CHECK(split_of(spec, "x", 3) == split_of(spec, "x", 3));
  }
}
