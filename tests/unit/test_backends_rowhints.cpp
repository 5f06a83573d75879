// SPDX-License-Identifier: MIT
// backends/common/rowhints.hpp: the process's table of row ids by index for the REST stores.
#include <doctest/doctest.h>

#include "backends/common/rowhints.hpp"

using vstash::backends::hints::RowHints;

TEST_SUITE("backends::hints::RowHints") {
  TEST_CASE("an index without a learned id is hinted by its default id") {
    auto hints = RowHints::of("test location a", "d");
    CHECK(hints->id_of(0) == "0");
    CHECK(hints->id_of(42) == "42");
  }

  TEST_CASE("learned ids are kept per location and dataset, and a default id replaces one") {
    auto a = RowHints::of("test location b", "d");
    a->learn(3, std::string("row-three"));
    CHECK(RowHints::of("test location b", "d")->id_of(3) == "row-three");
    CHECK(RowHints::of("test location b", "other")->id_of(3) == "3");
    CHECK(RowHints::of("another location", "d")->id_of(3) == "3");
    a->learn(3, std::string("3"));
    CHECK(a->id_of(3) == "3");
  }

  TEST_CASE("a table is complete only at the catalog state it was completed at") {
    auto hints = RowHints::of("test location c", "d");
    CHECK_FALSE(hints->complete_at(""));
    CHECK_FALSE(hints->complete_at("v1"));
    hints->set_complete("v1");
    CHECK(hints->complete_at("v1"));
    CHECK_FALSE(hints->complete_at("v2"));
  }
}
