// SPDX-License-Identifier: MIT
// The Redis Cluster client behind Connection (redisconnection.hpp): one single-node
// Connection per master, commands routed by the slot of their key (redisclusterslots.hpp).
//
// Routing rules:
// - a keyed command goes to the master of its key's slot; a pipeline spanning several masters
//   is written to all of them before any reply is read, and the replies come back in the
//   caller's order;
// - -MOVED refreshes the slot map (CLUSTER SLOTS) and resends; -ASK sends ASKING and the
//   command to the importing node, once; TRYAGAIN and CLUSTERDOWN are retried, refreshing,
//   until connect_timeout_ms has passed, then they leave as RetryableError (exit 3);
// - WATCH pins the transaction to the node of its key; MULTI ... EXEC goes whole to that node
//   (or to the node of the block's first key). Commands of the block on another slot (the
//   prefix-wide index sets: datasets, models, runs, each an idempotent SADD/SREM/EXPIRE) are
//   sent after the EXEC succeeded and their results put back in EXEC's array, in order: the
//   transaction itself never crosses slots, and an aborted EXEC sends none of them. A block
//   whose slot moved under it is never half-applied: the whole block is resent when nothing
//   was watched, else RetryableError (Redis aborted it whole with EXECABORT);
// - keyless commands (PING, INFO, UNWATCH, SCAN) go to the watched node if any, else to the
//   master of slot 0: SCAN therefore covers one master (the backend does not SCAN a cluster);
// - a transport error drops that node's connection, refreshes the map from any reachable
//   node and leaves as RetryableError; wait_for_server() polls until every slot has a master
//   that answers PING (a replica promoted after a failover).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/redis/redisclusterslots.hpp"
#include "backends/redis/redisconnection.hpp"

namespace vstash::backends::redis {

class ClusterRouter {
 public:
  // `options` carries credentials and timeouts for every node; `seeds` are "host:port". Reads
  // the slot map from the first seed that answers (RetryableError if none does).
  ClusterRouter(ConnectOptions options, std::vector<std::string> seeds, std::vector<std::string> secrets);
  ~ClusterRouter();
  ClusterRouter(const ClusterRouter&) = delete;
  ClusterRouter& operator=(const ClusterRouter&) = delete;

  void append(std::span<const std::string_view> args);
  size_t pending() const { return m_queue.size(); }
  uint64_t round_trips() const { return m_round_trips; }
  // One reply per appended command, in order, redirections followed; error replies in place.
  std::vector<Reply> flush_unchecked();
  void wait_for_server();
  const SlotMap& slot_map() const { return m_map; }

  struct Item;  // a command or a MULTI block, and where it went (rediscluster.cpp)

 private:
  Connection& node(const std::string& endpoint);
  void refresh();
  bool try_refresh() noexcept;
  std::string master_for(int slot);
  std::string route(const std::vector<std::string>& args);
  std::vector<Item> plan(std::vector<std::vector<std::string>>& queue);
  void send_round(std::vector<Item*>& items);
  void run(std::vector<Item>& items);
  void finish_blocks(std::vector<Item>& items);

  ConnectOptions m_options;
  std::vector<std::string> m_seeds;
  std::vector<std::string> m_secrets;
  std::map<std::string, std::unique_ptr<Connection>> m_nodes;
  SlotMap m_map;
  std::vector<std::vector<std::string>> m_queue;
  std::string m_watch_node;  // where WATCH went, until EXEC, DISCARD or UNWATCH
  int m_watch_slot = -1;
  uint64_t m_round_trips = 0;
};

}  // namespace vstash::backends::redis
