// SPDX-License-Identifier: MIT
// Redis Cluster addressing, without a socket: the hash slot of a key (CRC16-XMODEM of the key
// or of its hash tag, mod 16384), which argument of a command is its key, the slot map read
// from CLUSTER SLOTS, and the -MOVED / -ASK redirections. rediscluster.cpp routes with these.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace vstash::backends::redis {

constexpr int k_cluster_slots = 16384;

// CRC16-XMODEM (poly 0x1021, init 0), the checksum Redis Cluster hashes keys with.
uint16_t crc16_xmodem(std::string_view data);
// The slot of a key. With a hash tag (the first '{' followed, not immediately, by a '}'), only
// the text between them is hashed: "{user1000}.a" and "{user1000}.b" share a slot; "foo{}{bar}"
// hashes the whole key; "foo{{bar}}zap" hashes "{bar".
int key_slot(std::string_view key);

// Which argument of a command the backend sends is its key: 1 for the single- and multi-key
// commands (GET, HSET, UNLINK, WATCH, RENAME: the backend keeps a command's keys under one
// hash tag), 3 for EVAL/EVALSHA with numkeys > 0, 2 for MEMORY USAGE; nullopt for keyless
// commands (PING, INFO, SCAN, MULTI, EXEC, UNWATCH, SCRIPT, CLUSTER, AUTH, EVAL with 0 keys).
std::optional<size_t> key_position(std::span<const std::string> args);

// A master and the slots it serves, from CLUSTER SLOTS.
struct SlotRange {
  int first = 0;
  int last = 0;
  std::string endpoint;  // "host:port" of the master
};
// Parses a CLUSTER SLOTS reply: each element [first, last, [host, port, id...], replicas...].
// An empty host (a node that does not know its own address) is replaced by `asked_host`.
// Throws Error on a malformed reply.
std::vector<SlotRange> parse_cluster_slots(const redisReply& reply, const std::string& asked_host);

// Slot -> index into endpoints(); -1 for a slot no master serves.
class SlotMap {
 public:
  void assign(const std::vector<SlotRange>& ranges);
  // Points one slot at a master (what -MOVED says), adding the endpoint if new.
  void move(int slot, const std::string& endpoint);
  // The master of a slot, or "" if none is known.
  const std::string& master(int slot) const;
  const std::vector<std::string>& endpoints() const { return m_endpoints; }
  bool complete() const;  // every slot has a master

 private:
  int index_of(const std::string& endpoint);
  std::array<int16_t, k_cluster_slots> m_owner{};
  std::vector<std::string> m_endpoints;
  bool m_assigned = false;
};

// "-MOVED 3999 127.0.0.1:6381" / "-ASK 3999 127.0.0.1:6381" (the reply text, without '-').
struct Redirect {
  bool ask = false;
  int slot = 0;
  std::string endpoint;
};
std::optional<Redirect> parse_redirect(std::string_view error);

// "host:port" -> host and port; nullopt if malformed. The host may be an IPv6 literal
// ("::1:6379": the port follows the last colon).
std::optional<std::pair<std::string, int64_t>> split_endpoint(std::string_view endpoint);

}  // namespace vstash::backends::redis
