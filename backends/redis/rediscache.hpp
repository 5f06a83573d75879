// SPDX-License-Identifier: MIT
// Cache primitives on a Redis server for the cache tier (backends/common/cachedbackend.cpp):
// generation-scoped values, hit/miss counters, and a cache that never fails a command.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "redisconnection.hpp"

namespace vstash {
class Profile;
}

namespace vstash::backends::redis {

// Every cached value lives under a scope (one dataset, or one model's checkpoints) and that
// scope's current generation token:  P cache:v:{SCOPE}:GEN:KEY. A write through vstash
// replaces the token (invalidate), so values cached before it are never read again and age
// out by TTL. Tokens are random, not counters: if the token key is evicted, a new random one
// is made, and no old value can match it.
//
// Failure policy: the first error of any kind (refused, timeout, auth, OOM) marks the cache
// down for the rest of the process and prints one warning on stderr; from then on lookups
// miss and stores/invalidations do nothing, so commands run from the primary alone.
class Cache {
 public:
  // Timeouts default to 200 ms unless the profile sets them: a slow cache must not stall.
  explicit Cache(const Profile& profile);
  ~Cache();

  struct Lookup {
    std::string generation;
    std::optional<std::string> value;  // nullopt: miss
  };
  // nullopt when the cache is down.
  std::optional<Lookup> lookup(const std::string& scope, const std::string& key);
  // Stores value under the generation a lookup returned (a value read before a concurrent
  // invalidation is thus stored where nobody looks).
  void store(const std::string& scope, const std::string& generation, const std::string& key, std::string_view value);
  void invalidate(const std::string& scope);
  // {"location", "available", "hits", "misses", "bytes", "keys", "ttl"}: hits/misses are
  // the server's totals across processes; bytes sums the cached values.
  nlohmann::json stats();
  const std::string& endpoint() const { return m_endpoint; }

 private:
  Connection* connection();  // nullptr when down
  void mark_down() noexcept;
  std::string value_prefix(const std::string& scope) const;

  std::mutex m_mutex;
  ConnectOptions m_options;
  std::string m_prefix;
  int64_t m_ttl = 0;
  std::string m_endpoint;
  std::unique_ptr<Connection> m_conn;
  bool m_down = false;
};

}  // namespace vstash::backends::redis
