// SPDX-License-Identifier: MIT
// Hash slots, key positions, CLUSTER SLOTS and redirections (see redisclusterslots.hpp).
#include "backends/redis/redisclusterslots.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cctype>
#include <charconv>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#include "src/errors.hpp"

namespace vstash::backends::redis {

namespace {
bool same_word(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
         });
}

std::optional<int64_t> to_int(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    return std::nullopt;
  }
  return v;
}

[[noreturn]] void malformed(std::string_view what) {
  throw Error(fmt::format("redis cluster: malformed CLUSTER SLOTS reply ({})", what));
}

std::string_view text_of(const redisReply& r) {
  if (r.type != REDIS_REPLY_STRING && r.type != REDIS_REPLY_STATUS) {
    malformed("expected a string");
  }
  return {r.str, static_cast<size_t>(r.len)};
}

int slot_bound(const redisReply& r) {
  if (r.type != REDIS_REPLY_INTEGER || r.integer < 0 || r.integer >= k_cluster_slots) {
    malformed("slot out of range");
  }
  return static_cast<int>(r.integer);
}
}  // namespace

uint16_t crc16_xmodem(std::string_view data) {
  uint16_t crc = 0;
  for (const char c : data) {
    crc = static_cast<uint16_t>(crc ^ (static_cast<uint8_t>(c) << 8));
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

int key_slot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return crc16_xmodem(key) & (k_cluster_slots - 1);
}

std::optional<size_t> key_position(std::span<const std::string> args) {
  if (args.empty()) {
    return std::nullopt;
  }
  const std::string_view name = args[0];
  if (same_word(name, "EVAL") || same_word(name, "EVALSHA")) {
    const auto numkeys = args.size() > 3 ? to_int(args[2]) : std::nullopt;
    return numkeys && *numkeys > 0 ? std::optional<size_t>(3) : std::nullopt;
  }
  if (same_word(name, "MEMORY")) {
    return args.size() > 2 && same_word(args[1], "USAGE") ? std::optional<size_t>(2) : std::nullopt;
  }
  for (const char* keyless : {"PING", "INFO", "SCAN", "MULTI", "EXEC", "DISCARD", "UNWATCH", "SCRIPT", "CLUSTER",
                              "AUTH", "SELECT", "ASKING", "READONLY", "DBSIZE", "FLUSHDB", "FLUSHALL", "CONFIG"}) {
    if (same_word(name, keyless)) {
      return std::nullopt;
    }
  }
  return args.size() > 1 ? std::optional<size_t>(1) : std::nullopt;
}

std::vector<SlotRange> parse_cluster_slots(const redisReply& reply, const std::string& asked_host) {
  if (reply.type != REDIS_REPLY_ARRAY) {
    malformed("expected an array");
  }
  std::vector<SlotRange> out;
  for (size_t i = 0; i < reply.elements; ++i) {
    const redisReply& range = *reply.element[i];
    if (range.type != REDIS_REPLY_ARRAY || range.elements < 3) {
      malformed("a slot range has no master");
    }
    const redisReply& master = *range.element[2];
    if (master.type != REDIS_REPLY_ARRAY || master.elements < 2 || master.element[1]->type != REDIS_REPLY_INTEGER) {
      malformed("a master has no host and port");
    }
    SlotRange r{slot_bound(*range.element[0]), slot_bound(*range.element[1]), {}};
    if (r.first > r.last) {
      malformed("a slot range ends before it starts");
    }
    const std::string_view host = text_of(*master.element[0]);
    const long long port = master.element[1]->integer;
    if (port <= 0 || port > 65535) {
      malformed("port out of range");
    }
    r.endpoint = fmt::format("{}:{}", host.empty() || host == "?" ? asked_host : std::string(host), port);
    out.push_back(std::move(r));
  }
  return out;
}

void SlotMap::assign(const std::vector<SlotRange>& ranges) {
  m_owner.fill(-1);
  m_endpoints.clear();
  for (const auto& r : ranges) {
    const auto at = static_cast<int16_t>(index_of(r.endpoint));
    std::fill(m_owner.begin() + r.first, m_owner.begin() + r.last + 1, at);
  }
  m_assigned = true;
}

int SlotMap::index_of(const std::string& endpoint) {
  const auto it = std::find(m_endpoints.begin(), m_endpoints.end(), endpoint);
  if (it != m_endpoints.end()) {
    return static_cast<int>(it - m_endpoints.begin());
  }
  m_endpoints.push_back(endpoint);
  return static_cast<int>(m_endpoints.size() - 1);
}

void SlotMap::move(int slot, const std::string& endpoint) {
  if (!m_assigned) {
    m_owner.fill(-1);
    m_assigned = true;
  }
  m_owner[static_cast<size_t>(slot)] = static_cast<int16_t>(index_of(endpoint));
}

const std::string& SlotMap::master(int slot) const {
  static const std::string none;
  const int at = m_assigned ? m_owner[static_cast<size_t>(slot)] : -1;
  return at < 0 ? none : m_endpoints[static_cast<size_t>(at)];
}

bool SlotMap::complete() const {
  return m_assigned && std::none_of(m_owner.begin(), m_owner.end(), [](int16_t o) { return o < 0; });
}

std::optional<Redirect> parse_redirect(std::string_view error) {
  Redirect r;
  if (error.substr(0, 6) == "MOVED ") {
    error.remove_prefix(6);
  } else if (error.substr(0, 4) == "ASK ") {
    error.remove_prefix(4);
    r.ask = true;
  } else {
    return std::nullopt;
  }
  const size_t space = error.find(' ');
  const auto slot = space == std::string_view::npos ? std::nullopt : to_int(error.substr(0, space));
  if (!slot || *slot < 0 || *slot >= k_cluster_slots) {
    return std::nullopt;
  }
  r.slot = static_cast<int>(*slot);
  r.endpoint = std::string(error.substr(space + 1));
  if (!split_endpoint(r.endpoint)) {
    return std::nullopt;
  }
  return r;
}

std::optional<std::pair<std::string, int64_t>> split_endpoint(std::string_view endpoint) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return std::nullopt;
  }
  const auto port = to_int(endpoint.substr(colon + 1));
  if (!port || *port <= 0 || *port > 65535) {
    return std::nullopt;
  }
  return std::make_pair(std::string(endpoint.substr(0, colon)), *port);
}

}  // namespace vstash::backends::redis
