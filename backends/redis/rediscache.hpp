// SPDX-License-Identifier: MIT
// Cache primitives on a Redis server for the cache tier (backends/redis/cachedbackend.cpp):
// generation-scoped values and rows, a byte-bounded in-process memory of rows in front of
// them, hit/miss counters, and a cache that never fails a command.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/redis/redisconnection.hpp"

namespace vstash {
class Profile;
}

namespace vstash::backends::redis {

class RowMemory;

// Every cached value lives under a scope (one dataset, or one model's checkpoints) and that
// scope's current generation token: values at P cache:v:{SCOPE}:GEN:KEY, rows (by position)
// as fields of the hash P cache:r:{SCOPE}:GEN. Tokens are random, not counters: if the token
// key is evicted, a new random one is made, and no old value can match it.
//
// Exact invalidation across processes: a write through vstash registers itself in the scope's
// writer set and replaces the token before it touches the primary (begin_write), and leaves
// the set and replaces the token again after (end_write). While a writer is registered every
// lookup answers "bypass" (read the primary, store nothing); a store lands only if the token
// is still the one its lookup returned and no writer is registered, all checked in one Lua
// script. So values under a live token were all read from the primary while no write was in
// progress and none had begun since the token was made. A writer that dies is dropped from
// the set after k_writer_lease_s.
//
// Failure policy: the first error of any kind (refused, timeout, auth, OOM) marks the cache
// down for the rest of the process and prints one warning on stderr; from then on lookups
// miss and stores/invalidations do nothing, so commands run from the primary alone. (A
// writer whose cache is down cannot invalidate: other processes may then read values its
// write replaced until the cache ttl.)
class Cache {
 public:
  // Timeouts default to 200 ms unless the profile sets them: a slow cache must not stall.
  // memory_bytes > 0 keeps rows in process memory too (shared by every Cache of this process
  // on the same server and prefix, bounded by the largest memory_bytes asked for), checked
  // against the token in the same round trip as the Redis lookup.
  explicit Cache(const Profile& profile, int64_t memory_bytes = 0);
  ~Cache();

  struct Lookup {
    std::string generation;
    std::optional<std::string> value;  // nullopt: miss
  };
  // One round trip. nullopt when the cache is down or a write to the scope is in progress.
  std::optional<Lookup> lookup(const std::string& scope, const std::string& key);
  // Stores value under the generation a lookup returned, only if it is still current.
  void store(const std::string& scope, const std::string& generation, const std::string& key, std::string_view value);

  struct RowsLookup {
    std::string generation;
    std::vector<std::optional<std::string>> values;  // one per position; nullopt: miss
  };
  // The rows at these positions (duplicates allowed), from memory and Redis in one round trip.
  // nullopt as for lookup().
  std::optional<RowsLookup> lookup_rows(const std::string& scope, const std::vector<int64_t>& positions);
  // Stores rows (values[i] at positions[i]) under the generation lookup_rows returned.
  void store_rows(const std::string& scope, const std::string& generation, const std::vector<int64_t>& positions,
                  const std::vector<std::string>& values);

  // Around every write through vstash to the scope's primary data: begin_write before it,
  // end_write(token) after it, also when it threw (a failed call may have written part).
  std::string begin_write(const std::string& scope);
  void end_write(const std::string& scope, const std::string& token);

  // {"location", "available", "hits", "misses", "bytes", "keys", "ttl", "memory_*"}: hits/misses
  // are the server's totals across processes; bytes sums the cached values and row hashes.
  nlohmann::json stats();
  const std::string& endpoint() const { return m_endpoint; }
  // Round trips to the cache server so far (tests check that a hit costs one).
  uint64_t round_trips();

  // A writer absent this long (crashed) no longer blocks the cache.
  static constexpr int64_t k_writer_lease_s = 600;

 private:
  Connection* connection();  // nullptr when down
  void mark_down() noexcept;
  std::string scope_key(std::string_view kind, const std::string& scope) const;

  std::mutex m_mutex;
  ConnectOptions m_options;
  std::string m_prefix;
  int64_t m_ttl = 0;
  std::string m_endpoint;
  std::unique_ptr<Connection> m_conn;
  std::shared_ptr<RowMemory> m_memory;  // null: no memory tier
  uint64_t m_past_round_trips = 0;      // of connections since dropped
  bool m_down = false;
};

}  // namespace vstash::backends::redis
