// SPDX-License-Identifier: MIT
// The hiredis connection: connect/AUTH/SELECT, pipelined commands and error mapping.
#include "backends/redis/redisconnection.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/uio.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <iterator>
#include <set>
#include <thread>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#pragma GCC diagnostic pop

#include "backends/redis/rediscluster.hpp"
#include "backends/redis/redisclusterslots.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "src/util/scrub.hpp"

namespace vstash::backends::redis {

namespace {
// Past this many buffered bytes the pipeline is written out before more is appended. Small
// enough that hiredis 0.14's memmove of the unsent rest after each partial write stays cheap.
constexpr size_t k_max_obuf = 1u << 20;
// A command carrying this much (a chunk of samples) skips hiredis's output buffer and is
// written from where its values lie: two fewer copies of every sample byte.
constexpr size_t k_direct_bytes = 64u << 10;

timeval to_timeval(int64_t ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
}  // namespace

namespace {
// cluster: true|false and nodes: a YAML list of "host:port" (stored comma-joined) or a string.
void read_cluster_keys(const Profile& p, ConnectOptions& o) {
  if (p.has("cluster")) {
    o.cluster = p.get_bool("cluster", false) ? ClusterMode::cluster : ClusterMode::single;
  }
  const std::string nodes = p.get_string("nodes", "");
  for (size_t at = 0; at < nodes.size();) {
    size_t end = nodes.find(',', at);
    end = end == std::string::npos ? nodes.size() : end;
    std::string node = nodes.substr(at, end - at);
    node.erase(0, node.find_first_not_of(' '));
    node.erase(node.find_last_not_of(' ') + 1);
    if (!split_endpoint(node)) {
      throw UsageError(
          fmt::format("profile \"{}\" ({}): nodes: \"{}\" is not host:port", p.name(), p.source(), node.substr(0, 80)));
    }
    o.nodes.push_back(std::move(node));
    at = end + 1;
  }
  if (!o.nodes.empty() && o.cluster == ClusterMode::single) {
    throw UsageError(fmt::format("profile \"{}\" ({}): nodes needs cluster: true", p.name(), p.source()));
  }
  if (o.cluster == ClusterMode::cluster && (!o.socket.empty() || o.db != 0)) {
    throw UsageError(fmt::format("profile \"{}\" ({}): a cluster has no socket and no db but 0", p.name(), p.source()));
  }
  if (!o.nodes.empty()) {
    o.cluster = ClusterMode::cluster;
  }
}
}  // namespace

void ReplyDeleter::operator()(redisReply* r) const noexcept { freeReplyObject(r); }

ConnectOptions ConnectOptions::from_profile(const Profile& p, int64_t default_timeout_ms,
                                            int64_t default_connect_timeout_ms) {
  ConnectOptions o;
  // hiredis 0.14 (Debian 12) has no TLS: a TLS profile is refused rather than sent in clear
  // (docs/backends.md "TLS" gives the tunnel to use instead).
  const std::string host = p.get_string("host", "127.0.0.1");
  const bool tls_host = host.rfind("rediss://", 0) == 0;
  for (const char* key : {"tls", "tls_ca", "tls_cert", "tls_key"}) {
    if (tls_host || (p.has(key) && (std::string_view(key) != "tls" || p.get_bool(key, false)))) {
      throw UsageError(
          fmt::format("profile \"{}\" ({}): key \"{}\": this build's Redis client (hiredis 0.14) has "
                      "no TLS; reach the server through a TLS tunnel (stunnel, ssh -L) on a local port",
                      p.name(), p.source(), tls_host ? "host" : key));
    }
  }
  o.host = host;
  o.port = p.get_int("port", 6379);
  o.socket = p.get_string("socket", "");
  o.db = p.get_int("db", 0);
  o.username = p.get_string("username", "");
  o.password = p.get_string("password", "");
  o.timeout_ms = p.get_int("timeout_ms", default_timeout_ms);
  o.connect_timeout_ms = p.get_int("connect_timeout_ms", default_connect_timeout_ms);
  if (o.port <= 0 || o.port > 65535) {
    throw UsageError(fmt::format("profile \"{}\" ({}): port {} is out of range", p.name(), p.source(), o.port));
  }
  if (o.db < 0 || o.timeout_ms <= 0 || o.connect_timeout_ms <= 0) {
    throw UsageError(fmt::format("profile \"{}\" ({}): db, timeout_ms and connect_timeout_ms must be positive",
                                 p.name(), p.source()));
  }
  if (!o.username.empty() && o.password.empty()) {
    throw UsageError(fmt::format("profile \"{}\" ({}): username needs a password", p.name(), p.source()));
  }
  read_cluster_keys(p, o);
  return o;
}

std::string ConnectOptions::endpoint() const {
  if (cluster == ClusterMode::cluster && !nodes.empty()) {
    return fmt::format("{}", fmt::join(nodes, ","));
  }
  return socket.empty() ? fmt::format("{}:{}", host, port) : fmt::format("unix:{}", socket);
}

std::string ConnectOptions::location() const { return fmt::format("{}/{}", endpoint(), db); }

Connection::Connection(ConnectOptions options, std::vector<std::string> secrets)
    : m_options(std::move(options)), m_secrets(std::move(secrets)), m_location(m_options.location()) {
  if (!m_options.password.empty()) {
    m_secrets.push_back(m_options.password);
  }
  if (m_options.cluster != ClusterMode::cluster) {
    connect();
  }
  if (m_options.cluster == ClusterMode::cluster || (m_options.cluster == ClusterMode::detect && answers_as_cluster())) {
    if (m_ctx != nullptr) {
      redisFree(m_ctx);
      m_ctx = nullptr;
    }
    std::vector<std::string> seeds = m_options.nodes;
    if (seeds.empty()) {
      seeds.push_back(fmt::format("{}:{}", m_options.host, m_options.port));
    }
    m_cluster = std::make_unique<ClusterRouter>(m_options, std::move(seeds), m_secrets);
  }
}

Connection::~Connection() {
  if (m_ctx != nullptr) {
    redisFree(m_ctx);
  }
}

// One INFO cluster round trip, not counted in round_trips(). A server that refuses INFO
// (renamed, ACL) is taken for a single server.
bool Connection::answers_as_cluster() {
  if (!m_options.socket.empty()) {
    return false;
  }
  const uint64_t trips = m_round_trips;
  bool cluster = false;
  try {
    const Reply r = command({"INFO", "cluster"});
    cluster = as_view(*r).find("cluster_enabled:1") != std::string_view::npos;
  } catch (const RetryableError&) {
    throw;
  } catch (const Error&) {  // NOLINT(bugprone-empty-catch): no INFO, no cluster
  }
  m_round_trips = trips;
  return cluster;
}

size_t Connection::pending() const { return m_cluster ? m_cluster->pending() : m_pending; }

int64_t Connection::masters() const {
  if (!m_cluster) {
    return 1;
  }
  std::set<std::string> seen;
  for (int slot = 0; slot < k_cluster_slots; ++slot) {
    if (const std::string& m = m_cluster->slot_map().master(slot); !m.empty()) {
      seen.insert(m);
    }
  }
  return std::max<int64_t>(1, static_cast<int64_t>(seen.size()));
}

uint64_t Connection::round_trips() const { return m_cluster ? m_cluster->round_trips() : m_round_trips; }

void Connection::send_pending() {
  if (m_ctx != nullptr && m_ctx->obuf != nullptr && sdslen(m_ctx->obuf) > 0) {
    drain_output();
  }
}

Connection::Connection(Connection&& o) noexcept
    : m_options(std::move(o.m_options)),
      m_secrets(std::move(o.m_secrets)),
      m_location(std::move(o.m_location)),
      m_ctx(std::exchange(o.m_ctx, nullptr)),
      m_pending(std::exchange(o.m_pending, 0)),
      m_round_trips(o.m_round_trips),
      m_cluster(std::move(o.m_cluster)) {}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    if (m_ctx != nullptr) {
      redisFree(m_ctx);
    }
    m_options = std::move(o.m_options);
    m_secrets = std::move(o.m_secrets);
    m_location = std::move(o.m_location);
    m_ctx = std::exchange(o.m_ctx, nullptr);
    m_pending = std::exchange(o.m_pending, 0);
    m_round_trips = o.m_round_trips;
    m_cluster = std::move(o.m_cluster);
  }
  return *this;
}

std::string Connection::scrub(std::string text) const {
  text = util::scrub_secrets(std::move(text), m_secrets);
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

void Connection::fail_transport(std::string_view doing) {
  std::string what = "connection failed";
  if (m_ctx != nullptr) {
    const std::string err = lower(m_ctx->errstr);
    if (m_ctx->err == REDIS_ERR_EOF || err.find("closed") != std::string::npos) {
      what = "connection closed by the server";
    } else if (err.find("refused") != std::string::npos) {
      what = "connection refused";
    } else if (err.find("temporarily unavailable") != std::string::npos || err.find("timed out") != std::string::npos ||
               err.find("timeout") != std::string::npos) {
      what = fmt::format("timed out after {} ms",
                         doing == "connecting" ? m_options.connect_timeout_ms : m_options.timeout_ms);
    } else if (!err.empty()) {
      what = err;
    }
    redisFree(m_ctx);
    m_ctx = nullptr;
  }
  m_pending = 0;
  throw RetryableError(scrub(fmt::format("redis {}: {} ({})", m_location, what, doing)));
}

void Connection::connect() {
  const timeval ctv = to_timeval(m_options.connect_timeout_ms);
  m_ctx = m_options.socket.empty()
              ? redisConnectWithTimeout(m_options.host.c_str(), static_cast<int>(m_options.port), ctv)
              : redisConnectUnixWithTimeout(m_options.socket.c_str(), ctv);
  if (m_ctx == nullptr) {
    throw Error(fmt::format("redis {}: cannot allocate a connection", m_location));
  }
  if (m_ctx->err != 0) {
    fail_transport("connecting");
  }
  if (redisSetTimeout(m_ctx, to_timeval(m_options.timeout_ms)) != REDIS_OK) {
    fail_transport("setting the timeout");
  }
  m_pending = 0;
  // AUTH and SELECT are pipelined: one round trip before the first real command.
  if (!m_options.password.empty()) {
    if (m_options.username.empty()) {
      append({"AUTH", m_options.password});
    } else {
      append({"AUTH", m_options.username, m_options.password});
    }
  }
  const std::string db = std::to_string(m_options.db);
  if (m_options.db != 0) {
    append({"SELECT", db});
  }
  if (m_pending > 0) {
    auto replies = flush_unchecked();
    for (const auto& r : replies) {
      if (r->type == REDIS_REPLY_ERROR) {
        const std::string msg(as_view(*r));
        redisFree(m_ctx);
        m_ctx = nullptr;
        if (starts_with(msg, "WRONGPASS") || starts_with(msg, "ERR invalid password") ||
            starts_with(msg, "ERR invalid username")) {
          throw UsageError(fmt::format("redis {}: authentication failed for user \"{}\" (wrong password or user)",
                                       m_location, m_options.username.empty() ? "default" : m_options.username));
        }
        if (starts_with(msg, "ERR AUTH") || msg.find("no password is set") != std::string::npos) {
          throw UsageError(
              fmt::format("redis {}: the server has no password set; remove password from the profile", m_location));
        }
        if (starts_with(msg, "ERR DB index") || starts_with(msg, "ERR invalid DB")) {
          throw UsageError(fmt::format("redis {}: db {} does not exist on the server", m_location, m_options.db));
        }
        throw_reply_error(*r);
      }
    }
  }
}

void Connection::ensure_connected() {
  if (m_ctx == nullptr) {
    connect();
  }
}

void Connection::drain_output() {
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(m_ctx, &done) != REDIS_OK) {
      fail_transport("sending");
    }
  }
}

void Connection::write_direct(std::span<const std::string_view> args) {
  drain_output();  // what hiredis holds was queued first
  // Headers ("*N", each "$len") go into one string, reserved up front so views stay put.
  std::string heads;
  heads.reserve(24 * (args.size() + 1));
  std::vector<std::pair<size_t, size_t>> head_at;  // per arg: offset, length in heads
  heads += fmt::format("*{}\r\n", args.size());
  for (const auto& arg : args) {
    const size_t at = heads.size();
    fmt::format_to(std::back_inserter(heads), "${}\r\n", arg.size());
    head_at.emplace_back(at, heads.size() - at);
  }
  static constexpr char k_crlf[] = "\r\n";
  std::vector<iovec> iov;
  iov.reserve(3 * args.size() + 1);
  iov.push_back({heads.data(), head_at.empty() ? heads.size() : head_at.front().first});
  for (size_t i = 0; i < args.size(); ++i) {
    iov.push_back({heads.data() + head_at[i].first, head_at[i].second});
    iov.push_back({const_cast<char*>(args[i].data()), args[i].size()});
    iov.push_back({const_cast<char*>(k_crlf), 2});
  }
  size_t first = 0;
  while (first < iov.size()) {
    const auto count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
    const ssize_t sent = ::writev(m_ctx->fd, iov.data() + first, count);
    if (sent < 0) {
      if (errno == EINTR) {
        continue;
      }
      fail_transport("sending");
    }
    auto left = static_cast<size_t>(sent);
    while (first < iov.size() && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      ++first;
    }
    if (left > 0) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
}

void Connection::append(std::span<const std::string_view> args) {
  if (m_cluster) {
    m_cluster->append(args);
    return;
  }
  ensure_connected();
  size_t bytes = 0;
  for (const auto& arg : args) {
    bytes += arg.size();
  }
  if (bytes >= k_direct_bytes) {
    write_direct(args);
    ++m_pending;
    return;
  }
  // The RESP frame is built here and handed over whole: hiredis's own formatting (sdscatfmt
  // per argument) was the largest client cost of a batch read of hundreds of GETRANGEs. Its
  // buffer is kept per thread (under k_direct_bytes): no allocation per command.
  thread_local std::string frame;
  frame.clear();
  frame.reserve(bytes + 16 * (args.size() + 1));
  auto put_count = [](char tag, size_t n) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    frame.push_back(tag);
    frame.append(digits, end);
    frame.append("\r\n");
  };
  put_count('*', args.size());
  for (const auto& arg : args) {
    put_count('$', arg.size());
    frame.append(arg);
    frame.append("\r\n");
  }
  if (m_ctx->obuf != nullptr && sdslen(m_ctx->obuf) > k_max_obuf) {
    drain_output();
  }
  if (redisAppendFormattedCommand(m_ctx, frame.data(), frame.size()) != REDIS_OK) {
    fail_transport("queueing a command");
  }
  ++m_pending;
}

void Connection::append(std::initializer_list<std::string_view> args) {
  append(std::span<const std::string_view>(args.begin(), args.size()));
}

std::vector<Reply> Connection::flush_unchecked() {
  if (m_cluster) {
    return m_cluster->flush_unchecked();
  }
  ensure_connected();
  std::vector<Reply> out;
  out.reserve(m_pending);
  if (m_pending > 0) {
    ++m_round_trips;
  }
  while (m_pending > 0) {
    void* raw = nullptr;
    if (redisGetReply(m_ctx, &raw) != REDIS_OK || raw == nullptr) {
      fail_transport("waiting for a reply");
    }
    out.emplace_back(static_cast<redisReply*>(raw));
    --m_pending;
  }
  return out;
}

std::vector<Reply> Connection::flush() {
  auto replies = flush_unchecked();
  for (const auto& r : replies) {
    check(*r);
  }
  return replies;
}

void Connection::wait_for_server() {
  if (m_cluster) {
    m_cluster->wait_for_server();
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(m_options.connect_timeout_ms);
  for (auto pause = std::chrono::milliseconds(50);; pause = std::min(pause * 2, std::chrono::milliseconds(1000))) {
    try {
      command({"PING"});
      return;
    } catch (const RetryableError&) {
      if (std::chrono::steady_clock::now() + pause >= deadline) {
        throw;
      }
      std::this_thread::sleep_for(pause);
    }
  }
}

Reply Connection::command(std::initializer_list<std::string_view> args) {
  append(args);
  return std::move(flush().front());
}

void Connection::check(const redisReply& reply) const {
  if (reply.type == REDIS_REPLY_ERROR) {
    // EXECABORT only says that a queued command failed; that command's own reply (checked
    // first, it came earlier) names the reason.
    throw_reply_error(reply);
  }
}

void Connection::throw_reply_error(const redisReply& reply) const {
  const std::string msg = scrub(std::string(as_view(reply)));
  const std::string loc = m_location;
  if (starts_with(msg, "OOM")) {
    throw Error(
        fmt::format("redis {}: out of memory (OOM): the server reached maxmemory and refuses writes; "
                    "free memory, raise maxmemory or set a ttl",
                    loc));
  }
  if (starts_with(msg, "MISCONF")) {
    throw Error(
        fmt::format("redis {}: server misconfigured (MISCONF): it cannot persist to disk and refuses writes", loc));
  }
  if (starts_with(msg, "LOADING") || starts_with(msg, "BUSY") || starts_with(msg, "TRYAGAIN") ||
      starts_with(msg, "MASTERDOWN") || starts_with(msg, "CLUSTERDOWN")) {
    throw RetryableError(fmt::format("redis {}: server busy: {}", loc, msg));
  }
  if (starts_with(msg, "NOAUTH")) {
    throw UsageError(fmt::format("redis {}: authentication required; set password (and username) in the profile", loc));
  }
  if (starts_with(msg, "WRONGPASS") || starts_with(msg, "NOPERM")) {
    throw UsageError(fmt::format("redis {}: not allowed: {}", loc, msg));
  }
  if (starts_with(msg, "MOVED ") || starts_with(msg, "ASK ")) {
    throw RetryableError(
        fmt::format("redis {}: cluster slot moved and the move was not settled in time: {}", loc, msg));
  }
  if (starts_with(msg, "READONLY")) {
    throw RetryableError(fmt::format("redis {}: server is a read-only replica", loc));
  }
  throw Error(fmt::format("redis {}: {}", loc, msg));
}

bool is_nil(const redisReply& r) { return r.type == REDIS_REPLY_NIL; }

std::string_view as_view(const redisReply& r) {
  if (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS || r.type == REDIS_REPLY_ERROR) {
    return {r.str, static_cast<size_t>(r.len)};
  }
  if (r.type == REDIS_REPLY_NIL) {
    return {};
  }
  throw Error(fmt::format("redis: unexpected reply type {} (expected a string)", r.type));
}

std::string as_string(const redisReply& r) { return std::string(as_view(r)); }

int64_t as_int(const redisReply& r) {
  if (r.type == REDIS_REPLY_INTEGER) {
    return r.integer;
  }
  const std::string_view s = as_view(r);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    throw Error(fmt::format("redis: expected an integer, got \"{}\"", s.substr(0, 40)));
  }
  return v;
}

size_t array_size(const redisReply& r) {
  if (r.type == REDIS_REPLY_NIL) {
    return 0;
  }
  if (r.type != REDIS_REPLY_ARRAY) {
    throw Error(fmt::format("redis: unexpected reply type {} (expected an array)", r.type));
  }
  return r.elements;
}

const redisReply& element(const redisReply& r, size_t i) {
  if (i >= array_size(r)) {
    throw Error("redis: reply array shorter than expected");
  }
  return *r.element[i];
}

std::vector<std::string> string_array(const redisReply& r) {
  std::vector<std::string> out;
  for (size_t i = 0; i < array_size(r); ++i) {
    out.push_back(as_string(element(r, i)));
  }
  return out;
}

}  // namespace vstash::backends::redis
