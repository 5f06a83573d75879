// SPDX-License-Identifier: MIT
// The Redis Cluster router: planning a pipeline per node, fan-out, redirections, failover
// (rules in rediscluster.hpp).
#include "backends/redis/rediscluster.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <thread>
#include <utility>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#include "src/errors.hpp"

namespace vstash::backends::redis {

using Clock = std::chrono::steady_clock;

struct ClusterRouter::Item {
  std::vector<std::vector<std::string>> cmds;  // one command, or MULTI ... EXEC
  bool block = false;
  bool watched = false;        // a block guarded by a WATCH on its node
  int slot = -1;               // a block's transaction slot
  std::string node;            // where it is sent
  bool ask = false;            // preceded by ASKING (after -ASK)
  std::vector<bool> in_block;  // per command of a block: sent in the transaction (else after EXEC)
  std::vector<Reply> replies;  // one per command once read
};

namespace {
constexpr int k_max_rounds = 16;

bool is_word(const std::string& s, std::string_view w) {
  return s.size() == w.size() && std::equal(s.begin(), s.end(), w.begin(), [](char a, char b) {
           return std::toupper(static_cast<unsigned char>(a)) == b;
         });
}

Reply make_reply(int type) {
  auto* r = static_cast<redisReply*>(std::calloc(1, sizeof(redisReply)));
  if (r == nullptr) {
    throw std::bad_alloc();
  }
  r->type = type;
  return Reply(r);
}

Reply make_status(std::string_view text) {
  Reply r = make_reply(REDIS_REPLY_STATUS);
  r->str = static_cast<char*>(std::malloc(text.size() + 1));
  if (r->str == nullptr) {
    throw std::bad_alloc();
  }
  std::memcpy(r->str, text.data(), text.size());
  r->str[text.size()] = '\0';
  r->len = static_cast<decltype(r->len)>(text.size());
  return r;
}

std::string_view error_text(const Reply& r) {
  return r && r->type == REDIS_REPLY_ERROR ? std::string_view(r->str, static_cast<size_t>(r->len)) : std::string_view();
}

bool busy(std::string_view error) { return error.starts_with("TRYAGAIN") || error.starts_with("CLUSTERDOWN"); }
}  // namespace

ClusterRouter::ClusterRouter(ConnectOptions options, std::vector<std::string> seeds, std::vector<std::string> secrets)
    : m_options(std::move(options)), m_seeds(std::move(seeds)), m_secrets(std::move(secrets)) {
  refresh();
}

ClusterRouter::~ClusterRouter() = default;

Connection& ClusterRouter::node(const std::string& endpoint) {
  auto it = m_nodes.find(endpoint);
  if (it != m_nodes.end()) {
    return *it->second;
  }
  const auto hp = split_endpoint(endpoint);
  if (!hp) {
    throw Error(fmt::format("redis cluster: bad node address \"{}\"", endpoint));
  }
  ConnectOptions o = m_options;
  o.host = hp->first;
  o.port = hp->second;
  o.socket.clear();
  o.db = 0;
  o.cluster = ClusterMode::single;
  o.nodes.clear();
  auto conn = std::make_unique<Connection>(std::move(o), m_secrets);
  return *m_nodes.emplace(endpoint, std::move(conn)).first->second;
}

void ClusterRouter::refresh() {
  std::vector<std::string> candidates = m_map.endpoints();
  for (const auto& s : m_seeds) {
    if (std::find(candidates.begin(), candidates.end(), s) == candidates.end()) {
      candidates.push_back(s);
    }
  }
  std::string last = "no seed node";
  for (const auto& ep : candidates) {
    try {
      Connection& c = node(ep);
      const Reply r = c.command({"CLUSTER", "SLOTS"});
      auto ranges = parse_cluster_slots(*r, split_endpoint(ep)->first);
      if (!ranges.empty()) {
        m_map.assign(ranges);
        return;
      }
      last = fmt::format("{} serves no slots", ep);
    } catch (const RetryableError& e) {
      last = e.what();
    }
  }
  throw RetryableError(
      fmt::format("redis cluster {}: no node answered CLUSTER SLOTS (last: {})", fmt::join(m_seeds, ","), last));
}

bool ClusterRouter::try_refresh() noexcept {
  try {
    refresh();
    return true;
  } catch (...) {  // NOLINT(bugprone-empty-catch): the caller reports its own error
    return false;
  }
}

std::string ClusterRouter::master_for(int slot) {
  if (m_map.master(slot).empty()) {
    refresh();
  }
  if (m_map.master(slot).empty()) {
    throw RetryableError(fmt::format("redis cluster {}: no master serves slot {}", fmt::join(m_seeds, ","), slot));
  }
  return m_map.master(slot);
}

std::string ClusterRouter::route(const std::vector<std::string>& args) {
  const auto pos = key_position(args);
  if (!pos && !m_watch_node.empty()) {
    return m_watch_node;
  }
  return master_for(pos ? key_slot(args[*pos]) : 0);
}

void ClusterRouter::append(std::span<const std::string_view> args) { m_queue.emplace_back(args.begin(), args.end()); }

std::vector<ClusterRouter::Item> ClusterRouter::plan(std::vector<std::vector<std::string>>& queue) {
  std::vector<Item> items;
  items.reserve(queue.size());
  for (size_t i = 0; i < queue.size(); ++i) {
    Item item;
    if (!is_word(queue[i][0], "MULTI")) {
      const std::string& name = queue[i][0];
      item.node = route(queue[i]);
      if (is_word(name, "WATCH")) {
        m_watch_node = item.node;
        m_watch_slot = key_slot(queue[i].at(1));
      } else if (is_word(name, "UNWATCH")) {
        m_watch_node.clear();
        m_watch_slot = -1;
      }
      item.cmds.push_back(std::move(queue[i]));
      items.push_back(std::move(item));
      continue;
    }
    item.block = true;
    item.watched = m_watch_slot >= 0;
    item.slot = m_watch_slot;
    size_t end = i;
    while (end < queue.size() && !is_word(queue[end][0], "EXEC") && !is_word(queue[end][0], "DISCARD")) {
      const auto pos = key_position(queue[end]);
      if (item.slot < 0 && pos) {
        item.slot = key_slot(queue[end][*pos]);
      }
      ++end;
    }
    if (end == queue.size()) {
      throw Error("redis cluster: a MULTI block must be flushed with its EXEC");
    }
    for (size_t j = i; j <= end; ++j) {
      const auto pos = key_position(queue[j]);
      item.in_block.push_back(!pos || key_slot(queue[j][*pos]) == item.slot);
      item.cmds.push_back(std::move(queue[j]));
    }
    item.node = item.watched ? m_watch_node : master_for(std::max(item.slot, 0));
    m_watch_node.clear();
    m_watch_slot = -1;
    items.push_back(std::move(item));
    i = end;
  }
  return items;
}

// Appends every item to its node, writes all nodes out, then reads each node's replies: the
// nodes work in parallel. After a transport error every other node is still read (its stream
// stays in step), the map is refreshed and the error leaves.
void ClusterRouter::send_round(std::vector<Item*>& items) {
  std::vector<std::pair<Connection*, std::vector<Item*>>> by_node;
  std::exception_ptr failed;
  std::vector<std::string_view> args;  // one command's, reused
  try {
    for (Item* item : items) {
      Connection& c = node(item->node);
      auto at = std::find_if(by_node.begin(), by_node.end(), [&](const auto& p) { return p.first == &c; });
      if (at == by_node.end()) {
        at = by_node.insert(by_node.end(), {&c, {}});
      }
      at->second.push_back(item);
      if (item->ask) {
        c.append({"ASKING"});
      }
      for (size_t i = 0; i < item->cmds.size(); ++i) {
        if (!item->block || item->in_block[i]) {
          const auto& cmd = item->cmds[i];
          args.assign(cmd.begin(), cmd.end());
          c.append(args);
        }
      }
    }
    for (auto& [c, _] : by_node) {
      c->send_pending();
    }
  } catch (const RetryableError&) {
    failed = std::current_exception();
  }
  for (auto& [c, its] : by_node) {
    std::vector<Reply> got;
    try {
      got = c->flush_unchecked();
    } catch (const RetryableError&) {
      failed = failed ? failed : std::current_exception();
      continue;
    }
    auto next = got.begin();
    for (Item* item : its) {
      if (item->ask && next != got.end()) {
        ++next;  // ASKING's +OK
      }
      item->replies.clear();
      item->replies.reserve(item->cmds.size());
      for (size_t i = 0; i < item->cmds.size(); ++i) {
        const bool sent = !item->block || item->in_block[i];
        item->replies.push_back(sent && next != got.end() ? std::move(*next++) : make_status("QUEUED"));
      }
    }
  }
  if (failed) {
    try_refresh();
    std::rethrow_exception(failed);
  }
}

// Sends the items, then follows redirections until every reply is final, k_max_rounds or
// connect_timeout_ms have passed (what is left stays an error reply: check() maps it).
void ClusterRouter::run(std::vector<Item>& all) {
  std::vector<Item*> todo;
  for (auto& item : all) {
    todo.push_back(&item);
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(m_options.connect_timeout_ms);
  auto pause = std::chrono::milliseconds(20);
  for (int round = 0; !todo.empty(); ++round) {
    ++m_round_trips;
    send_round(todo);
    std::vector<Item*> again;
    bool wait = false;
    bool moved = false;
    for (Item* item : todo) {
      const size_t n = item->block ? item->cmds.size() : 1;
      for (size_t i = 0; i < n; ++i) {
        const std::string_view err = error_text(item->replies[i]);
        const auto redirect = parse_redirect(err);
        if (!redirect && !busy(err)) {
          continue;
        }
        if (item->block && item->watched) {
          if (!m_nodes.empty()) {
            try {
              node(item->node).command({"UNWATCH"});
            } catch (const RetryableError&) {  // NOLINT(bugprone-empty-catch): the node dropped its watch too
            }
          }
          try_refresh();
          throw RetryableError(
              fmt::format("redis {}: slot {} moved or is unavailable during a watched transaction "
                          "(nothing was applied): {}",
                          item->node, item->slot, err.substr(0, 80)));
        }
        wait = wait || busy(err) || (redirect && redirect->ask && item->block);
        moved = moved || (redirect && !redirect->ask);
        if (redirect && !redirect->ask) {
          m_map.move(redirect->slot, redirect->endpoint);
        }
        const bool ask_once = redirect && redirect->ask && !item->block && !item->ask;
        item->ask = ask_once;
        item->node = ask_once ? redirect->endpoint : item->node;
        again.push_back(item);
        break;
      }
    }
    if (again.empty() || round + 1 >= k_max_rounds || Clock::now() >= deadline) {
      return;
    }
    if (wait) {
      std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - Clock::now()));
      pause = std::min(pause * 2, std::chrono::milliseconds(500));
    }
    if (wait || moved) {
      try_refresh();
    }
    for (Item* item : again) {
      if (!item->ask) {
        item->node = item->block ? master_for(std::max(item->slot, 0)) : route(item->cmds[0]);
      }
      if (!item->block && is_word(item->cmds[0][0], "WATCH") && m_watch_slot >= 0) {
        m_watch_node = item->node;  // the block that follows is still to be planned
      }
    }
    todo = std::move(again);
  }
}

// Sends the commands each committed block left for after its EXEC (other slots) and puts
// their results into EXEC's array where a single server would have had them.
void ClusterRouter::finish_blocks(std::vector<Item>& items) {
  std::vector<Item> later;
  std::vector<std::pair<Item*, size_t>> owner;  // block and command index of each later item
  for (auto& item : items) {
    const Reply& exec = item.replies.back();
    if (!item.block || exec->type != REDIS_REPLY_ARRAY) {
      continue;
    }
    for (size_t i = 1; i + 1 < item.cmds.size(); ++i) {
      if (!item.in_block[i]) {
        Item one;
        one.cmds.push_back(item.cmds[i]);
        one.node = route(one.cmds[0]);
        later.push_back(std::move(one));
        owner.emplace_back(&item, i);
      }
    }
  }
  if (later.empty()) {
    return;
  }
  run(later);
  for (size_t at = 0; at < later.size();) {
    Item& block = *owner[at].first;
    Reply& exec = block.replies.back();
    const size_t n = block.cmds.size() - 2;
    Reply merged = make_reply(REDIS_REPLY_ARRAY);
    merged->element = static_cast<redisReply**>(std::calloc(n == 0 ? 1 : n, sizeof(redisReply*)));
    if (merged->element == nullptr) {
      throw std::bad_alloc();
    }
    merged->elements = n;
    size_t from_exec = 0;
    for (size_t i = 1; i + 1 < block.cmds.size(); ++i) {
      if (block.in_block[i] && from_exec < exec->elements) {
        merged->element[i - 1] = std::exchange(exec->element[from_exec++], nullptr);
      } else if (!block.in_block[i]) {
        merged->element[i - 1] = later[at++].replies.front().release();
      } else {
        merged->element[i - 1] = make_status("QUEUED").release();  // unreachable: EXEC has every result
      }
    }
    exec = std::move(merged);
  }
}

std::vector<Reply> ClusterRouter::flush_unchecked() {
  auto queue = std::exchange(m_queue, {});
  if (queue.empty()) {
    return {};
  }
  std::vector<Item> items = plan(queue);
  run(items);
  finish_blocks(items);
  std::vector<Reply> out;
  out.reserve(queue.size());
  for (auto& item : items) {
    for (auto& r : item.replies) {
      out.push_back(std::move(r));
    }
  }
  return out;
}

void ClusterRouter::wait_for_server() {
  const auto deadline = Clock::now() + std::chrono::milliseconds(m_options.connect_timeout_ms);
  for (auto pause = std::chrono::milliseconds(50);; pause = std::min(pause * 2, std::chrono::milliseconds(1000))) {
    try {
      refresh();
      for (const auto& ep : m_map.endpoints()) {
        node(ep).command({"PING"});
      }
      if (m_map.complete()) {
        return;
      }
      throw RetryableError(fmt::format("redis cluster {}: not every slot has a master", fmt::join(m_seeds, ",")));
    } catch (const RetryableError&) {
      if (Clock::now() + pause >= deadline) {
        throw;
      }
      std::this_thread::sleep_for(pause);
    }
  }
}

}  // namespace vstash::backends::redis
