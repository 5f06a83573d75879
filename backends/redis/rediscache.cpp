// SPDX-License-Identifier: MIT
// Generation-scoped cache values and rows in Redis, a memory tier in front of the rows,
// counters and a fail-open policy (contract in rediscache.hpp).
#include "backends/redis/rediscache.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstdio>
#include <list>
#include <map>
#include <random>
#include <unordered_map>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#include "backends/redis/redisstore.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"

namespace vstash::backends::redis {

namespace {
constexpr int64_t k_cache_timeout_ms = 200;
constexpr int k_max_scan_rounds = 200;

// Shared head of the lookup scripts: KEYS[1] the scope's token, KEYS[2] the counters, KEYS[3]
// the scope's writers (a sorted set scored by lease end). A registered writer means "bypass"
// (an empty token); a missing token is created from ARGV[2] with ttl ARGV[3].
#define VSTASH_CACHE_TOKEN_LUA                                                         \
  "local now = redis.call('TIME')\n"                                                   \
  "if redis.call('ZCOUNT', KEYS[3], '(' .. now[1], '+inf') > 0 then return {''} end\n" \
  "local g = redis.call('GET', KEYS[1])\n"                                             \
  "if not g then\n"                                                                    \
  "  g = ARGV[2]\n"                                                                    \
  "  if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[1], g, 'EX', ARGV[3]) else " \
  "redis.call('SET', KEYS[1], g) end\n"                                                \
  "end\n"

// A value: ARGV[1] the value prefix, ARGV[4] the key. Returns {token, value or nil}.
constexpr std::string_view k_lookup = VSTASH_CACHE_TOKEN_LUA R"lua(
local v = redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[4])
if v then redis.call('HINCRBY', KEYS[2], 'hits', 1) else redis.call('HINCRBY', KEYS[2], 'misses', 1) end
return {g, v}
)lua";

// Rows: ARGV[1] the row hash prefix, ARGV[4] the token the caller's memory holds rows under,
// ARGV[5] how many of the positions ARGV[6..] it does not hold (they come first). When the
// token is still ARGV[4] only those are read, else all. Returns {token, value or nil, ...}.
constexpr std::string_view k_lookup_rows = VSTASH_CACHE_TOKEN_LUA R"lua(
local last = #ARGV
if g == ARGV[4] then last = 5 + tonumber(ARGV[5]) end
local out = {g}
local missing = 0
local h = ARGV[1] .. g
local i = 6
while i <= last do
  local j = math.min(i + 999, last)
  local vals = redis.call('HMGET', h, unpack(ARGV, i, j))
  for n = 1, j - i + 1 do
    local v = vals[n]
    out[#out + 1] = v
    if not v then missing = missing + 1 end
  end
  i = j + 1
end
if missing == 0 then redis.call('HINCRBY', KEYS[2], 'hits', 1) else redis.call('HINCRBY', KEYS[2], 'misses', 1) end
return out
)lua";

// Shared head of the store scripts: nothing is stored unless KEYS[1] still holds the token
// ARGV[1] and no writer is registered in KEYS[2].
#define VSTASH_CACHE_STORE_LUA                                   \
  "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n" \
  "local now = redis.call('TIME')\n"                             \
  "if redis.call('ZCOUNT', KEYS[2], '(' .. now[1], '+inf') > 0 then return 0 end\n"

// ARGV[2] the value key, ARGV[3] ttl, ARGV[4] the value.
constexpr std::string_view k_store = VSTASH_CACHE_STORE_LUA R"lua(
if tonumber(ARGV[3]) > 0 then redis.call('SET', ARGV[2], ARGV[4], 'EX', ARGV[3]) else redis.call('SET', ARGV[2], ARGV[4]) end
return 1
)lua";

// ARGV[2] the row hash, ARGV[3] ttl, ARGV[4..] position, value pairs.
constexpr std::string_view k_store_rows = VSTASH_CACHE_STORE_LUA R"lua(
local i = 4
while i <= #ARGV do
  local j = math.min(i + 1999, #ARGV)
  redis.call('HSET', ARGV[2], unpack(ARGV, i, j))
  i = j + 1
end
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', ARGV[2], ARGV[3]) end
return 1
)lua";

// KEYS[1] the token, KEYS[2] the writers; ARGV[1] this writer, ARGV[2] its lease in seconds
// (0: leave), ARGV[3] the new token, ARGV[4] ttl.
constexpr std::string_view k_write = R"lua(
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local lease = tonumber(ARGV[2])
if lease > 0 then
  redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
  redis.call('EXPIRE', KEYS[2], lease + 1)
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4]) else redis.call('SET', KEYS[1], ARGV[3]) end
return 1
)lua";

#undef VSTASH_CACHE_TOKEN_LUA
#undef VSTASH_CACHE_STORE_LUA

std::string random_token() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}
}  // namespace

// Rows held in process memory: per scope the token they were read under, least recently used
// evicted past the capacity (value bytes plus a fixed overhead per row). Thread-safe.
class RowMemory {
 public:
  explicit RowMemory(int64_t capacity) : m_capacity(capacity) {}

  void grow(int64_t capacity) {
    std::lock_guard lock(m_mutex);
    m_capacity = std::max(m_capacity, capacity);
  }
  // The token the scope's rows are held under and the values held ("" and all nullopt: none).
  std::string get(const std::string& scope, const std::vector<int64_t>& positions,
                  std::vector<std::optional<std::string>>& out) {
    std::lock_guard lock(m_mutex);
    out.assign(positions.size(), std::nullopt);
    const auto s = m_scopes.find(scope);
    if (s == m_scopes.end()) {
      return {};
    }
    for (size_t i = 0; i < positions.size(); ++i) {
      if (const auto r = s->second.rows.find(positions[i]); r != s->second.rows.end()) {
        m_lru.splice(m_lru.begin(), m_lru, r->second);
        out[i] = r->second->value;
        ++m_hits;
      }
    }
    return s->second.generation;
  }
  // Holds rows read under token generation; rows of another token are dropped first.
  void put(const std::string& scope, const std::string& generation, const std::vector<int64_t>& positions,
           const std::vector<std::optional<std::string>>& values) {
    std::lock_guard lock(m_mutex);
    auto& s = m_scopes[scope];
    if (s.generation != generation) {
      drop_locked(scope, s);
      s.generation = generation;
    }
    for (size_t i = 0; i < positions.size(); ++i) {
      if (!values[i] || s.rows.count(positions[i]) > 0 || cost(*values[i]) > m_capacity) {
        continue;
      }
      m_lru.push_front(Node{scope, positions[i], *values[i]});
      s.rows.emplace(positions[i], m_lru.begin());
      m_bytes += cost(*values[i]);
    }
    while (m_bytes > m_capacity && !m_lru.empty()) {
      auto last = std::prev(m_lru.end());
      m_bytes -= cost(last->value);
      m_scopes[last->scope].rows.erase(last->position);
      m_lru.erase(last);
    }
  }
  void forget(const std::string& scope) {
    std::lock_guard lock(m_mutex);
    if (auto s = m_scopes.find(scope); s != m_scopes.end()) {
      drop_locked(scope, s->second);
      m_scopes.erase(s);
    }
  }
  nlohmann::json stats() {
    std::lock_guard lock(m_mutex);
    return {{"memory_capacity", m_capacity},
            {"memory_bytes", m_bytes},
            {"memory_rows", m_lru.size()},
            {"memory_hits", m_hits}};
  }

 private:
  struct Node {
    std::string scope;
    int64_t position;
    std::string value;
  };
  using List = std::list<Node>;
  struct Scope {
    std::string generation;
    std::unordered_map<int64_t, List::iterator> rows;
  };
  static int64_t cost(const std::string& value) { return static_cast<int64_t>(value.size() + 96); }
  void drop_locked(const std::string& /*scope*/, Scope& s) {
    for (const auto& [position, it] : s.rows) {
      m_bytes -= cost(it->value);
      m_lru.erase(it);
    }
    s.rows.clear();
  }

  std::mutex m_mutex;
  int64_t m_capacity;
  int64_t m_bytes = 0;
  int64_t m_hits = 0;
  List m_lru;  // most recently used first
  std::map<std::string, Scope> m_scopes;
};

namespace {
// One memory per cache server and prefix in a process, so that a loader's workers (each with
// its own backend and connection) share what they read.
std::shared_ptr<RowMemory> shared_memory(const std::string& where, int64_t bytes) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<RowMemory>> all;
  std::lock_guard lock(mutex);
  if (auto found = all[where].lock()) {
    found->grow(bytes);
    return found;
  }
  auto made = std::make_shared<RowMemory>(bytes);
  all[where] = made;
  return made;
}
}  // namespace

Cache::Cache(const Profile& profile, int64_t memory_bytes)
    : m_options(ConnectOptions::from_profile(profile, k_cache_timeout_ms, k_cache_timeout_ms)),
      m_prefix(profile.get_string("prefix", "vstash:") + "cache:"),
      m_ttl(profile.get_int("ttl", 0)),
      m_endpoint(m_options.endpoint()) {
  // The cache's lookups count hits in one prefix-wide hash beside the scope's keys and its
  // stats SCAN the keyspace: both assume one server. A cluster named as such is refused here;
  // a plain host/port that turns out to be a cluster node is refused on connect (connection()).
  if (m_options.cluster == ClusterMode::cluster) {
    throw UsageError(
        fmt::format("profile \"{}\": the cache tier needs a single redis-server, not a Redis Cluster", profile.name()));
  }
  if (memory_bytes > 0) {
    m_memory = shared_memory(m_options.location() + "|" + m_prefix, memory_bytes);
  }
}

Cache::~Cache() = default;

void Cache::mark_down() noexcept {
  if (!m_down) {
    std::fprintf(stderr, "vstash: warning: cache %s unreachable; reading from the primary\n", m_endpoint.c_str());
  }
  m_down = true;
  if (m_conn) {
    m_past_round_trips += m_conn->round_trips();
  }
  m_conn.reset();
}

Connection* Cache::connection() {
  if (m_down) {
    return nullptr;
  }
  if (!m_conn) {
    m_conn = std::make_unique<Connection>(m_options);
    if (m_conn->is_cluster()) {
      std::fprintf(stderr,
                   "vstash: warning: cache %s is a Redis Cluster node; the cache tier needs a single "
                   "redis-server; reading from the primary\n",
                   m_endpoint.c_str());
      m_conn.reset();
      m_down = true;
      return nullptr;
    }
  }
  return m_conn.get();
}

uint64_t Cache::round_trips() {
  std::lock_guard lock(m_mutex);
  return m_past_round_trips + (m_conn ? m_conn->round_trips() : 0);
}

// kind: "gen" (the token), "w" (the writers), "v" (value prefix), "r" (row hash prefix).
std::string Cache::scope_key(std::string_view kind, const std::string& scope) const {
  const bool prefix = kind == "v" || kind == "r";
  return fmt::format("{}{}:{{{}}}{}", m_prefix, kind, key_escape(scope), prefix ? ":" : "");
}

std::optional<Cache::Lookup> Cache::lookup(const std::string& scope, const std::string& key) {
  std::lock_guard lock(m_mutex);
  try {
    Connection* conn = connection();
    if (conn == nullptr) {
      return std::nullopt;
    }
    const std::string ttl = std::to_string(m_ttl);
    auto r = conn->command({"EVAL", k_lookup, "3", scope_key("gen", scope), m_prefix + "stats", scope_key("w", scope),
                            scope_key("v", scope), random_token(), ttl, key});
    Lookup out;
    out.generation = as_string(element(*r, 0));
    if (out.generation.empty()) {
      return std::nullopt;  // a write is in progress
    }
    if (array_size(*r) > 1 && !is_nil(element(*r, 1))) {
      out.value = as_string(element(*r, 1));
    }
    return out;
  } catch (const std::exception&) {
    mark_down();
    return std::nullopt;
  }
}

void Cache::store(const std::string& scope, const std::string& generation, const std::string& key,
                  std::string_view value) {
  std::lock_guard lock(m_mutex);
  try {
    Connection* conn = connection();
    if (conn == nullptr) {
      return;
    }
    const std::string ttl = std::to_string(m_ttl);
    conn->command({"EVAL", k_store, "2", scope_key("gen", scope), scope_key("w", scope), generation,
                   scope_key("v", scope) + generation + ":" + key, ttl, value});
  } catch (const std::exception&) {
    mark_down();
  }
}

std::optional<Cache::RowsLookup> Cache::lookup_rows(const std::string& scope, const std::vector<int64_t>& positions) {
  std::vector<std::optional<std::string>> held;
  std::string held_generation;
  if (m_memory) {
    held_generation = m_memory->get(scope, positions, held);
  } else {
    held.assign(positions.size(), std::nullopt);
  }
  // The positions memory lacks first, then the rest (read only if the token moved on).
  std::vector<size_t> order;
  order.reserve(positions.size());
  for (size_t i = 0; i < positions.size(); ++i) {
    if (!held[i]) {
      order.push_back(i);
    }
  }
  const size_t needed = order.size();
  for (size_t i = 0; i < positions.size(); ++i) {
    if (held[i]) {
      order.push_back(i);
    }
  }
  std::lock_guard lock(m_mutex);
  try {
    Connection* conn = connection();
    if (conn == nullptr) {
      return std::nullopt;
    }
    const std::string gen_key = scope_key("gen", scope);
    const std::string writers = scope_key("w", scope);
    const std::string stats = m_prefix + "stats";
    const std::string rows = scope_key("r", scope);
    const std::string token = random_token();
    const std::string ttl = std::to_string(m_ttl);
    const std::string count = std::to_string(needed);
    std::vector<std::string> fields;
    fields.reserve(order.size());
    for (const size_t i : order) {
      fields.push_back(std::to_string(positions[i]));
    }
    std::vector<std::string_view> args{"EVAL", k_lookup_rows, "3", gen_key,         stats, writers,
                                       rows,   token,         ttl, held_generation, count};
    args.insert(args.end(), fields.begin(), fields.end());
    conn->append(args);
    auto reply = std::move(conn->flush().at(0));
    RowsLookup out;
    out.generation = as_string(element(*reply, 0));
    if (out.generation.empty()) {
      return std::nullopt;  // a write is in progress
    }
    const bool memory_valid = !held_generation.empty() && out.generation == held_generation;
    const size_t got = array_size(*reply) - 1;
    if (got != (memory_valid ? needed : order.size())) {
      throw Error("cache: unexpected reply to a row lookup");
    }
    out.values = memory_valid ? std::move(held) : std::vector<std::optional<std::string>>(positions.size());
    for (size_t k = 0; k < got; ++k) {
      const auto& v = element(*reply, k + 1);
      if (!is_nil(v)) {
        out.values[order[k]] = as_string(v);
      }
    }
    if (m_memory) {
      m_memory->put(scope, out.generation, positions, out.values);
    }
    return out;
  } catch (const std::exception&) {
    mark_down();
    return std::nullopt;
  }
}

void Cache::store_rows(const std::string& scope, const std::string& generation, const std::vector<int64_t>& positions,
                       const std::vector<std::string>& values) {
  if (positions.empty()) {
    return;
  }
  std::lock_guard lock(m_mutex);
  try {
    Connection* conn = connection();
    if (conn == nullptr) {
      return;
    }
    const std::string gen_key = scope_key("gen", scope);
    const std::string writers = scope_key("w", scope);
    const std::string rows = scope_key("r", scope) + generation;
    const std::string ttl = std::to_string(m_ttl);
    std::vector<std::string> fields;
    fields.reserve(positions.size());
    for (const int64_t p : positions) {
      fields.push_back(std::to_string(p));
    }
    std::vector<std::string_view> args{"EVAL", k_store_rows, "2", gen_key, writers, generation, rows, ttl};
    for (size_t i = 0; i < positions.size(); ++i) {
      args.push_back(fields[i]);
      args.push_back(values[i]);
    }
    conn->append(args);
    conn->flush();
  } catch (const std::exception&) {
    mark_down();
    return;
  }
  if (m_memory) {
    std::vector<std::optional<std::string>> held(values.begin(), values.end());
    m_memory->put(scope, generation, positions, held);
  }
}

std::string Cache::begin_write(const std::string& scope) {
  std::string token = random_token();
  if (m_memory) {
    m_memory->forget(scope);
  }
  std::lock_guard lock(m_mutex);
  try {
    if (Connection* conn = connection()) {
      const std::string lease = std::to_string(k_writer_lease_s);
      const std::string ttl = std::to_string(m_ttl);
      conn->command(
          {"EVAL", k_write, "2", scope_key("gen", scope), scope_key("w", scope), token, lease, random_token(), ttl});
    }
  } catch (const std::exception&) {
    mark_down();
  }
  return token;
}

void Cache::end_write(const std::string& scope, const std::string& token) {
  if (m_memory) {
    m_memory->forget(scope);
  }
  std::lock_guard lock(m_mutex);
  try {
    if (Connection* conn = connection()) {
      const std::string ttl = std::to_string(m_ttl);
      conn->command(
          {"EVAL", k_write, "2", scope_key("gen", scope), scope_key("w", scope), token, "0", random_token(), ttl});
    }
  } catch (const std::exception&) {
    mark_down();
  }
}

nlohmann::json Cache::stats() {
  nlohmann::json out = {{"location", m_options.location()},
                        {"ttl", m_ttl},
                        {"available", false},
                        {"hits", 0},
                        {"misses", 0},
                        {"bytes", 0},
                        {"keys", 0}};
  if (m_memory) {
    out.update(m_memory->stats());
  }
  std::lock_guard lock(m_mutex);
  try {
    Connection* conn = connection();
    if (conn == nullptr) {
      return out;
    }
    conn->append({"HGET", m_prefix + "stats", "hits"});
    conn->append({"HGET", m_prefix + "stats", "misses"});
    auto counters = conn->flush();
    out["available"] = true;
    out["hits"] = is_nil(*counters[0]) ? 0 : as_int(*counters[0]);
    out["misses"] = is_nil(*counters[1]) ? 0 : as_int(*counters[1]);
    // Bytes: SCAN over the value keys and row hashes (bounded, so a huge shared cache cannot
    // stall stats); a value's length, a row hash's MEMORY USAGE.
    int64_t bytes = 0;
    int64_t keys = 0;
    bool complete = true;
    for (const std::string_view kind : {"v", "r"}) {
      std::string cursor = "0";
      int rounds = 0;
      do {
        auto page = conn->command({"SCAN", cursor, "MATCH", m_prefix + std::string(kind) + ":*", "COUNT", "1000"});
        cursor = as_string(element(*page, 0));
        const auto& names = element(*page, 1);
        for (size_t i = 0; i < array_size(names); ++i) {
          if (kind == "v") {
            conn->append({"STRLEN", as_view(element(names, i))});
          } else {
            conn->append({"MEMORY", "USAGE", as_view(element(names, i))});
          }
        }
        for (const auto& r : conn->flush()) {
          bytes += is_nil(*r) ? 0 : as_int(*r);
          ++keys;
        }
      } while (cursor != "0" && ++rounds < k_max_scan_rounds);
      complete = complete && cursor == "0";
    }
    out["bytes"] = bytes;
    out["keys"] = keys;
    out["bytes_complete"] = complete;
  } catch (const std::exception&) {
    mark_down();
    out["available"] = false;
  }
  return out;
}

}  // namespace vstash::backends::redis
