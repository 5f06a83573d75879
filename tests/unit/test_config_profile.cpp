// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>

#include "src/errors.hpp"
#include "src/profile.hpp"

using namespace vstash;

namespace {
std::string error_of(const std::string& text) {
  try {
    parse_profile_text(text, "p.yaml");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_SUITE("config::Profile") {
  TEST_CASE("every example in configs/ loads") {
    ::setenv("PGPASSWORD", "pw", 1);
    ::setenv("REDIS_PASSWORD", "pw", 1);
    ::setenv("QDRANT_API_KEY", "k", 1);
    ::setenv("PINECONE_API_KEY", "k", 1);
    const char* src = std::getenv("VSTASH_SOURCE_DIR");
    REQUIRE(src != nullptr);
    int loaded = 0;
    for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(src) / "configs")) {
      auto file = load_profile_file(entry.path().string());
      CHECK_FALSE(file.profiles.empty());
      ++loaded;
    }
    CHECK(loaded == static_cast<int>(profile_types().size()));  // one per backend in the registry
  }
  TEST_CASE("an unknown key names file, line and key") {
    CHECK(error_of("profiles:\n  a:\n    type: local\n    hots: x\n") ==
          R"(p.yaml:4: profile "a": unknown key "hots")");
  }
  TEST_CASE("a key of another backend type is refused") {
    CHECK(error_of("profiles:\n  a:\n    type: local\n    ttl: 3\n")
              .find(R"(key "ttl" does not apply to type "local")") != std::string::npos);
  }
  TEST_CASE("a value of the wrong type names the key") {
    CHECK(error_of("profiles:\n  r:\n    type: redis\n    port: sixty\n") ==
          R"(p.yaml:4: key "port": expected an integer, got "sixty")");
  }
  TEST_CASE("malformed YAML gives file and line") { CHECK(error_of("profiles:\n  a: [\n").find("p.yaml:") == 0); }
  TEST_CASE("${VAR} expands from the environment and an unset one is an error") {
    ::setenv("VSTASH_TEST_SECRET", "s3cret", 1);
    auto f = parse_profile_text("profiles:\n  p:\n    type: pgvector\n    password: ${VSTASH_TEST_SECRET}\n", "p.yaml");
    const auto& p = f.profiles.at("p");
    CHECK(p.get_string("password") == "s3cret");
    CHECK(p.redacted()["password"] == "***");
    CHECK(p.redacted().dump().find("s3cret") == std::string::npos);
    CHECK(error_of("profiles:\n  p:\n    type: pgvector\n    password: ${VSTASH_SURELY_UNSET_VAR}\n")
              .find("VSTASH_SURELY_UNSET_VAR is not set") != std::string::npos);
  }
  TEST_CASE("selection: explicit name, then the file default, then the built-in local store") {
    auto f = parse_profile_text("default: b\nprofiles:\n  a: {type: local}\n  b: {type: local}\n", "p.yaml");
    ::unsetenv("VSTASH_PROFILE");
    CHECK(select_profile(f, "a").name() == "a");
    CHECK(select_profile(f, "").name() == "b");
    auto builtin = select_profile(ProfileFile{}, "");
    CHECK(builtin.type() == "local");
    CHECK(builtin.source() == "<built-in>");
    CHECK_THROWS_AS(select_profile(f, "nope"), NotFoundError);
  }
  TEST_CASE("the default dataset comes from dataset, else the store's own name") {
    auto f = parse_profile_text("profiles:\n  q: {type: qdrant, collection_name: c}\n  l: {type: local}\n", "p.yaml");
    CHECK(f.profiles.at("q").default_dataset() == "c");
    CHECK(f.profiles.at("l").default_dataset() == "default");
  }
}
