// SPDX-License-Identifier: MIT
#include "backends/registry.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <filesystem>

#include "src/errors.hpp"
#include "src/profile.hpp"
#include "src/util/module.hpp"
#include "src/util/uuid.hpp"

// A backend's factory is linked only when CMake compiles its folder in (vstash_backend in
// CMakeLists.txt defines VSTASH_HAVE_<NAME>); its keys are known either way, so that a profile
// of a store left out of the build still loads and says "not compiled in" when opened. A store
// built as a module (VSTASH_MODULE_<NAME>: its module's name) is reached through its entry
// (backends/module.hpp), linked in (a weak reference) or loaded on first use.
#ifdef VSTASH_HAVE_LOCAL
#include "backends/local/localbackend.hpp"
#endif
#ifdef VSTASH_HAVE_REDIS
#include "backends/redis/cachedbackend.hpp"
#include "backends/redis/redisbackend.hpp"
#endif
#if defined(VSTASH_MODULE_PGVECTOR) || defined(VSTASH_MODULE_QDRANT) || defined(VSTASH_MODULE_PINECONE)
#include "backends/module.hpp"
#endif
#ifdef VSTASH_MODULE_PGVECTOR
extern "C" const vstash::backends::BackendModule* vstash_module_pgvector() __attribute__((weak));
#endif
#ifdef VSTASH_MODULE_QDRANT
extern "C" const vstash::backends::BackendModule* vstash_module_qdrant() __attribute__((weak));
#endif
#ifdef VSTASH_MODULE_PINECONE
extern "C" const vstash::backends::BackendModule* vstash_module_pinecone() __attribute__((weak));
#endif

namespace vstash::backends {

namespace {

using K = KeyType;

// Factories, null for a store that is not compiled in.
struct Factories {
  Factory create = nullptr;
  Factory open_read_only = nullptr;
};
#ifdef VSTASH_HAVE_LOCAL
constexpr Factories k_local{&local::create, &local::open_read_only};
#else
constexpr Factories k_local{};
#endif
#if defined(VSTASH_MODULE_PGVECTOR) || defined(VSTASH_MODULE_QDRANT) || defined(VSTASH_MODULE_PINECONE)
using ModuleEntry = const BackendModule* (*)();
// The factory of a store in module `name` (its entry `symbol`), on first use.
std::unique_ptr<Backend> create_from_module(ModuleEntry linked, const char* name, const char* symbol,
                                            const Profile& profile) {
  const BackendModule* m = util::module_entry(linked, name, symbol)();
  util::check_module_version(name, m->version);
  return m->create(profile);
}
#endif
#ifdef VSTASH_MODULE_PGVECTOR
std::unique_ptr<Backend> create_pgvector(const Profile& p) {
  return create_from_module(&vstash_module_pgvector, VSTASH_MODULE_PGVECTOR, "vstash_module_pgvector", p);
}
constexpr Factories k_pgvector{&create_pgvector};
#else
constexpr Factories k_pgvector{};
#endif
#ifdef VSTASH_HAVE_REDIS
constexpr Factories k_redis{&redis::create};
#else
constexpr Factories k_redis{};
#endif
#ifdef VSTASH_MODULE_QDRANT
std::unique_ptr<Backend> create_qdrant(const Profile& p) {
  return create_from_module(&vstash_module_qdrant, VSTASH_MODULE_QDRANT, "vstash_module_qdrant", p);
}
constexpr Factories k_qdrant{&create_qdrant};
#else
constexpr Factories k_qdrant{};
#endif
#ifdef VSTASH_MODULE_PINECONE
std::unique_ptr<Backend> create_pinecone(const Profile& p) {
  return create_from_module(&vstash_module_pinecone, VSTASH_MODULE_PINECONE, "vstash_module_pinecone", p);
}
constexpr Factories k_pinecone{&create_pinecone};
#else
constexpr Factories k_pinecone{};
#endif

// Key groups more than one store shares.
std::vector<ProfileKey> keys(std::initializer_list<std::vector<ProfileKey>> groups) {
  std::vector<ProfileKey> out;
  for (const auto& g : groups) {
    out.insert(out.end(), g.begin(), g.end());
  }
  return out;
}
// TLS (docs/backends.md "TLS"): CA bundle, client certificate and its key, PEM files.
const std::vector<ProfileKey> k_tls_keys = {{"tls_ca", K::string}, {"tls_cert", K::string}, {"tls_key", K::string}};
// The REST stores' HTTP layer (backends/http/httpclient.hpp ClientOptions).
const std::vector<ProfileKey> k_http_keys = {{"timeout_ms", K::integer, "120000"},
                                             {"connect_timeout_ms", K::integer, "10000"},
                                             {"parallel", K::integer, "4"},
                                             {"max_attempts", K::integer, "5"}};

// What each store cannot keep exactly (InexactRow), from what its folder stores.
std::string pgvector_inexact(const DatasetSpec&, const RowBatch& b, size_t i, bool& metadata_only) {
  if (b.ids[i].find('\0') != std::string::npos) {
    return "id: PostgreSQL text cannot hold a NUL character";
  }
  const bool md = i < b.metadata.size() && !b.metadata[i].is_null();
  if (md && b.metadata[i].dump().find("\\u0000") != std::string::npos) {
    metadata_only = true;
    return "metadata: PostgreSQL jsonb cannot hold a NUL character";
  }
  return "";
}

// Qdrant makes a UUID id its point id, lower-case: "ABC..." would read back as "abc...".
std::string qdrant_inexact(const DatasetSpec&, const RowBatch& b, size_t i, bool&) {
  if (auto u = util::canonical_uuid(b.ids[i]); u && *u != b.ids[i]) {
    return fmt::format("id: qdrant keeps a UUID id in lower case (it would read back as \"{}\")", *u);
  }
  return "";
}

// Pinecone keeps a record's metadata, the label and (unless the sample is a float32 vector)
// the exact sample in at most 40 KiB of metadata (backends/pinecone/pineconerecords.cpp);
// this is a lower bound of that record's size, so a row refused here is refused there too.
constexpr size_t k_pinecone_metadata_bytes = 40960;

size_t base64_size(size_t n) { return (n + 2) / 3 * 4; }

std::string pinecone_inexact(const DatasetSpec& spec, const RowBatch& b, size_t i, bool& metadata_only) {
  const nlohmann::json& md = i < b.metadata.size() ? b.metadata[i] : nlohmann::json();
  const size_t sample = spec.dtype != DType::f32 || spec.row_shape.size() != 1 ? base64_size(b.data.row_bytes()) : 0;
  const size_t label = b.labels ? base64_size(b.labels->row_bytes()) : 0;
  const size_t user = md.is_object() && !md.empty() ? md.dump().size() : 0;
  if (sample + label + user <= k_pinecone_metadata_bytes) {
    return "";
  }
  metadata_only = sample + label <= k_pinecone_metadata_bytes;
  return fmt::format(
      "metadata: the record needs at least {} bytes of pinecone metadata (metadata, label and "
      "exact sample), over its {}-byte limit",
      sample + label + user, k_pinecone_metadata_bytes);
}

BackendEntry entry(std::string_view type, std::vector<std::string_view> location, std::vector<ProfileKey> store_keys,
                   std::vector<TestPort> ports, Factories f, InexactRow inexact = nullptr) {
  return BackendEntry{type,    std::move(store_keys), std::move(ports), f.create, f.open_read_only,
                      inexact, std::move(location)};
}

// The backends, in display order. A new store is one entry here (its factory above), its
// folder, one vstash_backend line in CMakeLists.txt, configs/<name>.yaml and
// tests/suites/<name>.cmake.
const std::vector<BackendEntry> k_backends = {
    entry("local", {"path"},
          {{"path", K::string, "$XDG_DATA_HOME/vstash/local.db"},
           {"hnsw_m", K::integer, "16"},
           {"hnsw_ef_construction", K::integer, "200"},
           {"hnsw_ef_search", K::integer, "64"},
           {"hnsw_target_recall", K::number, "0.95"},
           {"hnsw_min_rows", K::integer, "50000"}},
          {}, k_local),
    entry("pgvector", {"host", "port", "database", "table_name"},
          keys({{{"host", K::string, "localhost"},
                 {"port", K::integer, "5432"},
                 {"database", K::string, "postgres"},
                 {"user", K::string},
                 {"password", K::string, {}, false, true},
                 {"table_name", K::string, "vstash"},
                 {"sslmode", K::string},
                 {"connect_timeout", K::integer, "10"},
                 {"statement_timeout_ms", K::integer, "0"},
                 {"index", K::string, "hnsw"},
                 {"m", K::integer, "16"},
                 {"ef_construction", K::integer, "64"},
                 {"ef_search", K::integer, "200"},
                 {"lists", K::integer, "0"},
                 {"probes", K::integer, "0"},
                 // "host:port,host:port": streaming replicas for row reads (backends/pgvector/pgreplicas.hpp).
                 {"read_replicas", K::string}},
                k_tls_keys}),
          {{"VSTASH_TEST_PG_PORT", 55432}}, k_pgvector, &pgvector_inexact),
    // Redis accepts the TLS keys (and `tls`) only to refuse them with a clear message.
    entry("redis", {"host", "port", "socket", "db", "prefix"},
          keys({{{"host", K::string, "127.0.0.1"},
                 {"port", K::integer, "6379"},
                 {"socket", K::string},
                 {"db", K::integer, "0"},
                 {"username", K::string},
                 {"password", K::string, {}, false, true},
                 {"prefix", K::string, "vstash:"},
                 {"ttl", K::integer, "0"},
                 {"tls", K::boolean, "false"},
                 {"timeout_ms", K::integer, "30000"},
                 {"connect_timeout_ms", K::integer, "5000"},
                 // Redis Cluster (backends/redis/rediscluster.hpp): seed nodes, a list of "host:port".
                 {"cluster", K::boolean, "false"},
                 {"nodes", K::string},
                 // Shards one new dataset is spread over, 1..256 (backends/redis/redisshards.cpp); unset: the masters.
                 {"shards_per_dataset", K::integer}},
                k_tls_keys}),
          {{"VSTASH_TEST_REDIS_PORT", 56379}, {"VSTASH_TEST_REDIS_CLUSTER_PORT", 56400}}, k_redis),
    entry("qdrant", {"host", "port", "collection_name"},
          keys({{{"host", K::string, "localhost"},
                 {"port", K::integer, "6333"},
                 {"https", K::boolean, "false"},
                 {"api_key", K::string, {}, false, true},
                 {"collection_name", K::string},
                 {"max_request_bytes", K::integer, "4194304"},
                 // Distributed collections (backends/qdrant/qdrantdistribution.hpp); unset: the server's.
                 {"shard_number", K::integer},
                 {"replication_factor", K::integer},
                 {"write_consistency_factor", K::integer},
                 {"on_disk", K::boolean},
                 {"consistency", K::string},  // reads: a replica count, majority, quorum or all
                 {"ordering", K::string},     // point writes: weak, medium or strong
                 {"shard_key", K::string},    // auto: datasets on custom shard keys of shared collections
                 {"shard_collection", K::string, "vstash-{dimension}-{metric}"}},
                k_http_keys,
                k_tls_keys}),
          {{"VSTASH_TEST_QDRANT_PORT", 56333}}, k_qdrant, &qdrant_inexact),
    entry("pinecone", {"host", "index_name", "namespace_prefix", "control_host", "environment"},
          keys({{{"api_key", K::string, "$PINECONE_API_KEY", true, true},
                 {"environment", K::string},
                 {"index_name", K::string},
                 {"host", K::string},
                 {"cloud", K::string},
                 {"region", K::string},
                 {"control_host", K::string, "api.pinecone.io"},
                 {"namespace_prefix", K::string},
                 {"wait", K::boolean, "true"}},
                k_http_keys,
                k_tls_keys}),
          {{"VSTASH_TEST_PINECONE_PORT", 56380}}, k_pinecone, &pinecone_inexact),
};

// Keys of every type: the Classical Backend document's Configuration Examples and the cache
// tier's (create_backend below).
const std::vector<ProfileKey> k_common_keys = {
    {"type", K::string, {}, true},
    {"dimension", K::integer},
    {"metric", K::string, "cosine"},
    {"dataset", K::string},
    {"cache", K::string},                  // a redis profile in the same file
    {"cache_memory_mb", K::integer, "0"},  // rows of the cache tier kept in process memory
};

std::unique_ptr<Backend> create_plain(const Profile& profile, Access access) {
  const BackendEntry* e = find_backend(profile.type());
  if (!e || !e->create) {
    throw UsageError(fmt::format("profile \"{}\" ({}): backend type \"{}\" is not compiled in (have: {})",
                                 profile.name(), profile.source(), profile.type(),
                                 fmt::join(compiled_backends(), ", ")));
  }
  return access == Access::read_only && e->open_read_only ? e->open_read_only(profile) : e->create(profile);
}

// The primary behind the cache tier: `cache:` names a redis profile of the same file.
std::unique_ptr<Backend> create_cached(const Profile& profile, const ProfileFile* file, Access access) {
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
  (void)access;
  throw UsageError(
      fmt::format("profile \"{}\": the cache tier needs the redis backend, which is not compiled in", profile.name()));
#endif
}

}  // namespace

const std::vector<BackendEntry>& backend_entries() { return k_backends; }

nlohmann::json store_identity(const Profile& profile) {
  const nlohmann::json values = profile.redacted();
  nlohmann::json id = {{"type", profile.type()}};
  const BackendEntry* e = find_backend(profile.type());
  for (const std::string_view key : e ? e->location_keys : std::vector<std::string_view>{}) {
    if (key == "path") {
      std::error_code ec;
      id["path"] = std::filesystem::weakly_canonical(profile.get_string("path", default_local_path()), ec).string();
    } else if (values.contains(key)) {
      id[std::string(key)] = values.at(std::string(key));
    }
  }
  return id;
}

const BackendEntry* find_backend(std::string_view type) {
  for (const auto& e : k_backends) {
    if (e.type == type) {
      return &e;
    }
  }
  return nullptr;
}

std::unique_ptr<Backend> create_backend(const Profile& profile, const ProfileFile* file, Access access) {
  if (profile.has("cache")) {
    return create_cached(profile, file, access);
  }
  if (profile.has("cache_memory_mb")) {
    throw UsageError(fmt::format("profile \"{}\" ({}): key \"cache_memory_mb\" needs a cache: key", profile.name(),
                                 profile.source()));
  }
  return create_plain(profile, access);
}

std::vector<std::string> compiled_backends() {
  std::vector<std::string> out;
  for (const auto& e : k_backends) {
    if (e.create) {
      out.emplace_back(e.type);
    }
  }
  return out;
}

}  // namespace vstash::backends

namespace vstash {

// Declared by the core (src/profile.hpp), which validates every profile against it.
const ProfileSchema& profile_schema() {
  static const ProfileSchema schema = [] {
    ProfileSchema s{backends::k_common_keys, {}};
    for (const auto& e : backends::k_backends) {
      s.backends.push_back(BackendKeys{e.type, e.keys});
    }
    return s;
  }();
  return schema;
}

}  // namespace vstash
