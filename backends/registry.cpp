// SPDX-License-Identifier: MIT
#include "backends/registry.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backends/local/localbackend.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#ifdef VSTASH_HAVE_PGVECTOR
#include "backends/pgvector/pgvectorbackend.hpp"
#endif
#ifdef VSTASH_HAVE_REDIS
#include "backends/common/cachedbackend.hpp"
#include "backends/redis/redisbackend.hpp"
#endif
#ifdef VSTASH_HAVE_QDRANT
#include "backends/qdrant/qdrantbackend.hpp"
#endif
#ifdef VSTASH_HAVE_PINECONE
#include "backends/pinecone/pineconebackend.hpp"
#endif

namespace vstash::backends {

namespace {
struct Entry {
  const char* type;
  std::unique_ptr<Backend> (*create)(const Profile&);
  // For Access::read_only, where the store opens otherwise; null: create serves both.
  std::unique_ptr<Backend> (*open_read_only)(const Profile&) = nullptr;
};
// The compiled-in stores. One explicit table: easy to grep, and nothing depends on static
// initialisers surviving the linker.
const Entry k_backends[] = {
    {"local", &local::create, &local::open_read_only},
#ifdef VSTASH_HAVE_PGVECTOR
    {"pgvector", &pgvector::create},
#endif
#ifdef VSTASH_HAVE_REDIS
    {"redis", &redis::create},
#endif
#ifdef VSTASH_HAVE_QDRANT
    {"qdrant", &qdrant::create},
#endif
#ifdef VSTASH_HAVE_PINECONE
    {"pinecone", &pinecone::create},
#endif
};
}  // namespace

namespace {
std::unique_ptr<Backend> create_plain(const Profile& profile, Access access) {
  for (const auto& e : k_backends) {
    if (profile.type() == e.type) {
      return access == Access::read_only && e.open_read_only ? e.open_read_only(profile) : e.create(profile);
    }
  }
  throw UsageError(fmt::format("profile \"{}\" ({}): backend type \"{}\" is not compiled in (have: {})", profile.name(),
                               profile.source(), profile.type(), fmt::join(compiled_backends(), ", ")));
}
}  // namespace

std::unique_ptr<Backend> create_backend(const Profile& profile, const ProfileFile* file, Access access) {
  if (!profile.has("cache")) {
    if (profile.has("cache_memory_mb")) {
      throw UsageError(fmt::format("profile \"{}\" ({}): key \"cache_memory_mb\" needs a cache: key", profile.name(),
                                   profile.source()));
    }
    return create_plain(profile, access);
  }
  const std::string cache_name = profile.get_string("cache");
  if (!file || !file->profiles.count(cache_name)) {
    throw UsageError(fmt::format("profile \"{}\" ({}): cache profile \"{}\" is not defined", profile.name(),
                                 profile.source(), cache_name));
  }
  const Profile& cache = file->profiles.at(cache_name);
  if (cache.type() != "redis") {
    throw UsageError(fmt::format("profile \"{}\" ({}): cache profile \"{}\" must be of type redis, not {}",
                                 profile.name(), profile.source(), cache_name, cache.type()));
  }
#ifdef VSTASH_HAVE_REDIS
  // Scoped by the primary's identity (type + location), so two stores sharing one cache
  // never read each other's entries.
  // The primary is opened on the first read the cache cannot serve.
  return make_cached([profile, access] { return create_plain(profile, access); }, profile, cache);
#else
  throw UsageError(
      fmt::format("profile \"{}\": the cache tier needs the redis backend, which is not compiled in", profile.name()));
#endif
}

std::vector<std::string> compiled_backends() {
  std::vector<std::string> out;
  for (const auto& e : k_backends) {
    out.emplace_back(e.type);
  }
  return out;
}

}  // namespace vstash::backends
