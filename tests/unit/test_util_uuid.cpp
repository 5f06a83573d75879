// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include "src/errors.hpp"
#include "src/util/uuid.hpp"

using vstash::util::canonical_uuid;
using vstash::util::sha1_hex;
using vstash::util::uuid_v5;

TEST_SUITE("util::uuid") {
  TEST_CASE("sha1 matches the FIPS 180 test vectors") {
    CHECK(sha1_hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    CHECK(sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    CHECK(sha1_hex(std::string(1'000'000, 'a')) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  }
  TEST_CASE("uuid5 of python.org under the dns namespace is the rfc value") {
    CHECK(uuid_v5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org") == "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    // The namespace may be given in any accepted form.
    CHECK(uuid_v5("{6BA7B810-9DAD-11D1-80B4-00C04FD430C8}", "python.org") == "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    CHECK(uuid_v5("6ba7b811-9dad-11d1-80b4-00c04fd430c8", "http://python.org/") ==
          "4c565f0d-3f5a-5890-b41b-20cf47701c5e");
  }
  TEST_CASE("uuid5 rejects a namespace that is not a uuid") {
    CHECK_THROWS_AS(uuid_v5("not-a-uuid", "x"), vstash::UsageError);
  }
  TEST_CASE("canonical_uuid accepts the four textual forms and lower-cases them") {
    const std::string c = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
    CHECK(canonical_uuid(c) == c);
    CHECK(canonical_uuid("5C56C793-69F3-4FBF-87E6-C4BF54C28C26") == c);
    CHECK(canonical_uuid("5c56c79369f34fbf87e6c4bf54c28c26") == c);
    CHECK(canonical_uuid("{5c56c793-69f3-4fbf-87e6-c4bf54c28c26}") == c);
    CHECK(canonical_uuid("urn:uuid:5c56c793-69f3-4fbf-87e6-c4bf54c28c26") == c);
  }
  TEST_CASE("canonical_uuid rejects near misses") {
    CHECK_FALSE(canonical_uuid(""));
    CHECK_FALSE(canonical_uuid("42"));
    CHECK_FALSE(canonical_uuid("5c56c793-69f3-4fbf-87e6-c4bf54c28c2"));
    CHECK_FALSE(canonical_uuid("5c56c793-69f34-fbf-87e6-c4bf54c28c26"));
    CHECK_FALSE(canonical_uuid("5c56c793-69f3-4fbf-87e6-c4bf54c28c2g"));
    CHECK_FALSE(canonical_uuid("{5c56c793-69f3-4fbf-87e6-c4bf54c28c26"));
    CHECK_FALSE(canonical_uuid(" 5c56c793-69f3-4fbf-87e6-c4bf54c28c26"));
  }
}
