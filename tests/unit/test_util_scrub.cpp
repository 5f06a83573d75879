// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include "src/util/scrub.hpp"

using vstash::util::scrub_secrets;

TEST_CASE("scrub_secrets: every occurrence of every secret becomes ***") {
  CHECK(scrub_secrets("auth s3cret failed for s3cret", {"s3cret"}) == "auth *** failed for ***");
  CHECK(scrub_secrets("nothing here", {"s3cret", ""}) == "nothing here");
  CHECK(scrub_secrets("", {"x"}).empty());
}

TEST_CASE("scrub_secrets: a secret the mask contains ends (the stores' own loops did not)") {
  // Qdrant's and Pinecone's copies searched again from the replacement: "*" never ended.
  CHECK(scrub_secrets("key * and **", {"*"}) == "key *** and ******");
}

TEST_CASE("scrub_secrets: the longer of two nested secrets goes first, nothing of it left") {
  CHECK(scrub_secrets("token abcdef", {"abc", "abcdef"}) == "token ***");
  CHECK(scrub_secrets("token abcdef", {"abcdef", "abc"}) == "token ***");
}
