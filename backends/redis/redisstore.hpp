// SPDX-License-Identifier: MIT
// Internal to the redis backend: the profile's settings, key naming and TTL handling, shared
// by every file of the store.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.hpp"
#include "backends/redis/redisconnection.hpp"

namespace vstash::backends::redis {

struct StoreConfig {
  std::string prefix = "vstash:";
  int64_t ttl = 0;  // seconds; 0 = keys never expire
  // shards_per_dataset: the shards a dataset created from here is spread over (1..256); 0:
  // the number of masters of a cluster, 1 on a single server.
  int64_t shards = 0;
};

// A name made safe inside a key: '%', '{', '}', ':' and control bytes become %XX, so that
// no dataset or model name can produce another's keys. The {...} around it in the key
// names is a cluster hash tag too, keeping one dataset's keys in one slot.
std::string key_escape(std::string_view name);

// Queues EXPIRE key ttl when the profile has a ttl.
void append_expire(Connection& conn, const StoreConfig& cfg, const std::string& key);

}  // namespace vstash::backends::redis
