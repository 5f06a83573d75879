// SPDX-License-Identifier: MIT
// The registry (backends/registry.hpp) is the one list of backends: profile validation
// (src/profile.hpp), `vstash --version` and the test servers read it.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"

using namespace vstash;
using backends::backend_entries;

namespace {

// A YAML value of the key's type.
std::string sample_value(KeyType type) {
  switch (type) {
    case KeyType::string:
      return "x";
    case KeyType::integer:
      return "7";
    case KeyType::number:
      return "0.5";
    case KeyType::boolean:
      return "true";
  }
  return "x";
}

std::string error_of(const std::string& text) {
  try {
    parse_profile_text(text, "r.yaml");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_SUITE("backends::registry") {
  TEST_CASE("the profile validator knows exactly the registry's types, in its order") {
    std::vector<std::string> types;
    for (const auto& e : backend_entries()) {
      types.emplace_back(e.type);
    }
    CHECK(profile_types() == types);
    CHECK(types == std::vector<std::string>{"local", "pgvector", "redis", "qdrant", "pinecone"});
    CHECK(error_of("profiles:\n  a:\n    type: mongo\n") ==
          R"(r.yaml:3: profile "a": unknown type "mongo" (one of local, pgvector, redis, qdrant, pinecone))");
  }

  TEST_CASE("every key a registry entry declares loads for that type, with its type") {
    int checked = 0;
    for (const auto& e : backend_entries()) {
      for (const auto& k : e.keys) {
        CAPTURE(e.type);
        CAPTURE(k.name);
        const std::string value = sample_value(k.type);
        const auto file = parse_profile_text(
            fmt::format("profiles:\n  p:\n    type: {}\n    {}: {}\n", e.type, k.name, value), "r.yaml");
        const Profile& p = file.profiles.at("p");
        REQUIRE(p.has(std::string(k.name)));
        if (k.type == KeyType::integer) {
          CHECK(p.get_int(std::string(k.name)) == 7);
        } else if (k.type == KeyType::boolean) {
          CHECK(p.get_bool(std::string(k.name), false));
        } else if (k.type == KeyType::string) {
          CHECK(p.get_string(std::string(k.name)) == "x");
        }
        if (k.secret) {
          CHECK(p.redacted()[std::string(k.name)] == "***");
          CHECK(p.secrets() == std::vector<std::string>{value});
        }
        ++checked;
      }
    }
    CHECK(checked > 40);
  }

  TEST_CASE("a key declared by several types has one type everywhere") {
    std::map<std::string, KeyType> seen;
    for (const auto& k : profile_schema().common) {
      seen.emplace(k.name, k.type);
    }
    for (const auto& e : backend_entries()) {
      for (const auto& k : e.keys) {
        CAPTURE(e.type);
        CAPTURE(k.name);
        CHECK(std::find_if(profile_schema().common.begin(), profile_schema().common.end(),
                           [&](const ProfileKey& c) { return c.name == k.name; }) == profile_schema().common.end());
        const auto [it, fresh] = seen.emplace(k.name, k.type);
        CHECK((fresh || it->second == k.type));
      }
    }
  }

  TEST_CASE("a key of no type, or of another type only, is refused with file:line") {
    CHECK(error_of("profiles:\n  a:\n    type: redis\n    port: 1\n    hots: x\n") ==
          R"(r.yaml:5: profile "a": unknown key "hots")");
    CHECK(error_of("profiles:\n  a:\n    type: pinecone\n    collection_name: c\n") ==
          R"(r.yaml:4: profile "a": key "collection_name" does not apply to type "pinecone")");
  }

  TEST_CASE("compiled_backends() is the registry's entries that have a factory") {
    std::vector<std::string> with_factory;
    for (const auto& e : backend_entries()) {
      if (e.create) {
        with_factory.emplace_back(e.type);
      }
    }
    CHECK(backends::compiled_backends() == with_factory);
    CHECK(with_factory.front() == "local");
#ifdef VSTASH_HAVE_REDIS
    CHECK(std::count(with_factory.begin(), with_factory.end(), "redis") == 1);
#else
    CHECK(std::count(with_factory.begin(), with_factory.end(), "redis") == 0);
#endif
  }

  TEST_CASE("a type without a factory says which ones this binary has") {
    const Profile p("p", "nosuch", nlohmann::json::object(), "r.yaml");
    try {
      (void)backends::create_backend(p);
      FAIL("no error");
    } catch (const UsageError& e) {
      CHECK(std::string(e.what()) ==
            fmt::format(R"(profile "p" (r.yaml): backend type "nosuch" is not compiled in (have: {}))",
                        fmt::join(backends::compiled_backends(), ", ")));
    }
  }

  TEST_CASE("each test port is the one its tests/servers script defaults to") {
    const char* src = std::getenv("VSTASH_SOURCE_DIR");
    REQUIRE(src != nullptr);
    std::string scripts;
    for (const auto& f : std::filesystem::directory_iterator(std::filesystem::path(src) / "tests" / "servers")) {
      scripts += read_text(f.path());
    }
    int ports = 0;
    for (const auto& e : backend_entries()) {
      for (const auto& port : e.test_ports) {
        CAPTURE(e.type);
        CHECK(scripts.find(fmt::format("${{{}:-{}}}", port.env, port.port)) != std::string::npos);
        ++ports;
      }
    }
    CHECK(ports == 5);  // redis has two: a server and a cluster
  }

  TEST_CASE("every backend has its example profile in configs/ and its suite in tests/suites/") {
    const char* src = std::getenv("VSTASH_SOURCE_DIR");
    REQUIRE(src != nullptr);
    const std::filesystem::path root(src);
    for (const char* var : {"PGPASSWORD", "REDIS_PASSWORD", "QDRANT_API_KEY", "PINECONE_API_KEY"}) {
      ::setenv(var, "k", 0);  // the examples read their secrets from these
    }
    for (const auto& e : backend_entries()) {
      CAPTURE(e.type);
      const std::string name(e.type);
      const auto file = load_profile_file((root / "configs" / (name + ".yaml")).string());
      CHECK(std::any_of(file.profiles.begin(), file.profiles.end(),
                        [&](const auto& kv) { return kv.second.type() == name; }));
      CHECK(std::filesystem::exists(root / "tests" / "suites" / (name + ".cmake")));
    }
  }
}
