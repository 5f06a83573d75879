// SPDX-License-Identifier: MIT
// The Redis server the unit tests share: tests/servers/redis.sh starts it and writes its
// profile file, named by VSTASH_REDIS_TEST_CONFIG (see tests/suites/redis.cmake).
#pragma once

#include <cstdlib>
#include <string>

#include "src/profile.hpp"
#include "tests/testutil.hpp"

namespace vstash::redistest {

// True when no test server was started (the Redis cases then skip or fail, as CTest says).
inline bool no_server() {
  const char* c = std::getenv("VSTASH_REDIS_TEST_CONFIG");
  return c == nullptr || *c == '\0';
}

inline const ProfileFile& config() {
  static const ProfileFile file = load_profile_file(std::getenv("VSTASH_REDIS_TEST_CONFIG"));
  return file;
}

// A named profile of the test file with a key prefix of its own, so that scans of "our" keys
// never see another test's (ctest runs suites in parallel on one server).
inline Profile isolated(const std::string& name, const std::string& tag) {
  Profile p = config().profiles.at(name);
  p.set("prefix", testutil::unique_name(tag) + ":");
  return p;
}

}  // namespace vstash::redistest
