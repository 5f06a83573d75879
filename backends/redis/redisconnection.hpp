// SPDX-License-Identifier: MIT
// A pipelining RAII connection to one redis-server (hiredis 0.14: RESP2, blocking sockets), or
// to a Redis Cluster through the router in rediscluster.hpp, behind the same interface.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;
struct redisReply;

namespace vstash {
class Profile;
}

namespace vstash::backends::redis {

class ClusterRouter;

// detect: a single host/port that answers INFO cluster with cluster_enabled:1 is a cluster;
// single: never a cluster (the router's own node connections); cluster: `cluster: true`.
enum class ClusterMode { detect, single, cluster };

struct ConnectOptions {
  std::string host = "127.0.0.1";
  int64_t port = 6379;
  std::string socket;  // unix socket path; replaces host/port when set
  int64_t db = 0;
  std::string username;  // Redis 6 ACL user; AUTH user pass
  std::string password;
  int64_t timeout_ms = 30000;
  int64_t connect_timeout_ms = 5000;
  ClusterMode cluster = ClusterMode::detect;
  std::vector<std::string> nodes;  // a cluster's seed nodes, "host:port"; empty: host/port

  // Reads host/port/socket/db/username/password/timeout_ms/connect_timeout_ms, and cluster
  // and nodes ("host:port" list, or a comma-separated string; implies cluster). The timeout
  // fallbacks differ for a cache (short, so a slow cache never stalls a command).
  static ConnectOptions from_profile(const Profile& profile, int64_t default_timeout_ms = 30000,
                                     int64_t default_connect_timeout_ms = 5000);
  // "host:port/db", "unix:/path/db" or, for a cluster with seed nodes, "host:port,host:port/0":
  // what messages name. Never holds a secret.
  std::string location() const;
  // "host:port" or the socket path, for the cache warning.
  std::string endpoint() const;
};

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept;
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Connects on construction (AUTH, SELECT) and reconnects lazily after a transport error.
// Commands are queued with append() and their replies read back in one round trip by
// flush(): the write buffer is drained whenever it grows past 1 MiB, so a pipeline of
// thousands of commands never makes hiredis 0.14 memmove a huge buffer.
class Connection {
 public:
  explicit Connection(ConnectOptions options, std::vector<std::string> secrets = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;

  void append(std::span<const std::string_view> args);
  void append(std::initializer_list<std::string_view> args);
  size_t pending() const;
  // Pipelines flushed so far (one round trip each; on a cluster, one per fan-out to the nodes),
  // for `stats` and the pipelining tests.
  uint64_t round_trips() const;
  bool connected() const { return m_ctx != nullptr || m_cluster != nullptr; }
  bool is_cluster() const { return m_cluster != nullptr; }
  // The masters serving the cluster's slots (its slot map as last read); 1 for a single server.
  int64_t masters() const;
  // Writes out what append() buffered without reading a reply (the cluster's fan-out).
  void send_pending();
  // Reads one reply per queued command. Throws RetryableError on a transport failure (the
  // connection is dropped and reopened by the next call) and the mapped error for the first
  // error reply, after every reply was read so the stream stays in step.
  std::vector<Reply> flush();
  // As flush(), but error replies are returned in place (EXEC's queued errors, NOSCRIPT).
  std::vector<Reply> flush_unchecked();
  Reply command(std::initializer_list<std::string_view> args);
  // After a transport failure or LOADING (a server restarting or failing over): polls with
  // PING, reconnecting, until the server answers or connect_timeout_ms has passed (then the
  // last RetryableError leaves). Callers retry an idempotent read once after it.
  void wait_for_server();

  // Throws the vstash error for an error reply: OOM and MISCONF name the condition,
  // LOADING/BUSY are retryable, auth failures are usage errors; secrets are scrubbed.
  [[noreturn]] void throw_reply_error(const redisReply& reply) const;
  // Throws the mapped error if reply (or, for an EXEC result, any element) is an error.
  void check(const redisReply& reply) const;
  const ConnectOptions& options() const { return m_options; }
  const std::string& location() const { return m_location; }

 private:
  void ensure_connected();
  void connect();
  bool answers_as_cluster();
  void drain_output();
  // Sends one command straight to the socket (after whatever is buffered), without copying
  // its arguments; for commands of k_direct_bytes or more.
  void write_direct(std::span<const std::string_view> args);
  [[noreturn]] void fail_transport(std::string_view doing);
  std::string scrub(std::string text) const;

  ConnectOptions m_options;
  std::vector<std::string> m_secrets;
  std::string m_location;
  redisContext* m_ctx = nullptr;
  size_t m_pending = 0;
  uint64_t m_round_trips = 0;
  std::unique_ptr<ClusterRouter> m_cluster;
};

// Reply accessors. as_string is binary safe; the others throw Error on an unexpected type.
bool is_nil(const redisReply& r);
std::string_view as_view(const redisReply& r);
std::string as_string(const redisReply& r);
int64_t as_int(const redisReply& r);  // integer replies and decimal strings
size_t array_size(const redisReply& r);
const redisReply& element(const redisReply& r, size_t i);
// The elements of an array reply (SMEMBERS, ZRANGE) as strings.
std::vector<std::string> string_array(const redisReply& r);

}  // namespace vstash::backends::redis
