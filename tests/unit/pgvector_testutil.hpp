// SPDX-License-Identifier: MIT
// What the pgvector unit tests against a real server share: the profile of the contract
// suite ($VSTASH_CONTRACT_CONFIG, $VSTASH_CONTRACT_PROFILE) and a direct session with its
// credentials (tests/unit/test_backends_pgvector.cpp, tests/unit/test_backends_pgvector_reads.cpp).
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>

#include "backends/pgvector/pgconnection.hpp"
#include "src/profile.hpp"

namespace vstash::pgtest {

inline Profile pg_profile() {
  const char* config = std::getenv("VSTASH_CONTRACT_CONFIG");
  const char* name = std::getenv("VSTASH_CONTRACT_PROFILE");
  REQUIRE_MESSAGE((config != nullptr && *config != '\0'), "VSTASH_CONTRACT_CONFIG must name the pgvector profile file");
  REQUIRE_MESSAGE((name != nullptr && *name != '\0'), "VSTASH_CONTRACT_PROFILE must name the pgvector profile");
  Profile p = select_profile(load_profile_file(config), name);
  REQUIRE(p.type() == "pgvector");
  return p;
}

// A direct session with the profile's credentials, to inspect or tamper with the tables.
inline backends::pgvector::Session session_of(const Profile& p) {
  backends::pgvector::ConnectionSettings s;
  s.host = p.get_string("host");
  s.port = p.get_int("port");
  s.database = p.get_string("database");
  s.user = p.get_string("user", "");
  s.password = p.get_string("password", "");
  return backends::pgvector::Session(s, {});
}

}  // namespace vstash::pgtest
