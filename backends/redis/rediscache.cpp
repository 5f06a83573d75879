// SPDX-License-Identifier: MIT
// Generation-scoped cache values in Redis, with counters and a fail-open policy.
#include "rediscache.hpp"

#include <cstdio>
#include <fmt/format.h>
#include <random>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#include "../../src/errors.hpp"
#include "../../src/profile.hpp"
#include "redisstore.hpp"

namespace vstash::backends::redis {

namespace {
constexpr int64_t k_cache_timeout_ms = 200;
constexpr int k_max_scan_rounds = 200;

// One round trip per lookup: the scope's token (created if missing), the value under it,
// and the server-side hit/miss counters.
constexpr std::string_view k_lookup = R"lua(
local g = redis.call('GET', KEYS[1])
if not g then
  g = ARGV[3]
  if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[1], g, 'EX', ARGV[4]) else redis.call('SET', KEYS[1], g) end
end
local v = redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])
if v then redis.call('HINCRBY', KEYS[2], 'hits', 1) else redis.call('HINCRBY', KEYS[2], 'misses', 1) end
return {g, v}
)lua";

std::string random_token() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}
}  // namespace

Cache::Cache(const Profile& profile)
    : m_options(ConnectOptions::from_profile(profile, k_cache_timeout_ms, k_cache_timeout_ms)),
      m_prefix(profile.get_string("prefix", "vstash:") + "cache:"),
      m_ttl(profile.get_int("ttl", 0)),
      m_endpoint(m_options.endpoint()) {}

Cache::~Cache() = default;

void Cache::mark_down() noexcept {
  if (!m_down) {
    std::fprintf(stderr, "vstash: warning: cache %s unreachable; reading from the primary\n", m_endpoint.c_str());
  }
  m_down = true;
  m_conn.reset();
}

Connection* Cache::connection() {
  if (m_down) {
    return nullptr;
  }
  if (!m_conn) {
    m_conn = std::make_unique<Connection>(m_options);
  }
  return m_conn.get();
}

std::string Cache::value_prefix(const std::string& scope) const {
  return fmt::format("{}v:{{{}}}:", m_prefix, key_escape(scope));
}

std::optional<Cache::Lookup> Cache::lookup(const std::string& scope, const std::string& key) {
  std::lock_guard lock(m_mutex);
  try {
    Connection* conn = connection();
    if (conn == nullptr) {
      return std::nullopt;
    }
    const std::string gen_key = fmt::format("{}gen:{{{}}}", m_prefix, key_escape(scope));
    const std::string token = random_token();
    const std::string ttl = std::to_string(m_ttl);
    auto r = conn->command({"EVAL", k_lookup, "2", gen_key, m_prefix + "stats", value_prefix(scope), key, token, ttl});
    Lookup out;
    out.generation = as_string(element(*r, 0));
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
    const std::string k = value_prefix(scope) + generation + ":" + key;
    if (m_ttl > 0) {
      const std::string ttl = std::to_string(m_ttl);
      conn->command({"SET", k, value, "EX", ttl});
    } else {
      conn->command({"SET", k, value});
    }
  } catch (const std::exception&) {
    mark_down();
  }
}

void Cache::invalidate(const std::string& scope) {
  std::lock_guard lock(m_mutex);
  try {
    Connection* conn = connection();
    if (conn == nullptr) {
      return;
    }
    // The token lives as long as the values under it (a lost token only costs misses).
    const std::string gen_key = fmt::format("{}gen:{{{}}}", m_prefix, key_escape(scope));
    if (m_ttl > 0) {
      const std::string ttl = std::to_string(m_ttl);
      conn->command({"SET", gen_key, random_token(), "EX", ttl});
    } else {
      conn->command({"SET", gen_key, random_token()});
    }
  } catch (const std::exception&) {
    mark_down();
  }
}

nlohmann::json Cache::stats() {
  std::lock_guard lock(m_mutex);
  nlohmann::json out = {{"location", m_options.location()}, {"ttl", m_ttl}, {"available", false},
                        {"hits", 0},  {"misses", 0},           {"bytes", 0},   {"keys", 0}};
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
    // Bytes: SCAN over the value keys (bounded, so a huge shared cache cannot stall stats).
    int64_t bytes = 0;
    int64_t keys = 0;
    std::string cursor = "0";
    int rounds = 0;
    do {
      auto page = conn->command({"SCAN", cursor, "MATCH", m_prefix + "v:*", "COUNT", "1000"});
      cursor = as_string(element(*page, 0));
      const auto& names = element(*page, 1);
      for (size_t i = 0; i < array_size(names); ++i) {
        conn->append({"STRLEN", as_view(element(names, i))});
      }
      for (const auto& r : conn->flush()) {
        bytes += as_int(*r);
        ++keys;
      }
    } while (cursor != "0" && ++rounds < k_max_scan_rounds);
    out["bytes"] = bytes;
    out["keys"] = keys;
    out["bytes_complete"] = cursor == "0";
  } catch (const std::exception&) {
    mark_down();
    out["available"] = false;
  }
  return out;
}

}  // namespace vstash::backends::redis
