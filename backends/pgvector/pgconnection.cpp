// SPDX-License-Identifier: MIT
// PostgreSQL session: connecting, raw libpq access and error classification.
#include "backends/pgvector/pgconnection.hpp"

#include <fmt/format.h>
#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>

#include "src/errors.hpp"
#include "src/util/scrub.hpp"

namespace vstash::backends::pgvector {

namespace {

// libpqxx 6 keeps the PGconn private; a connection policy sees every handle it opens, so
// this one reports it to the slot that was current when the connection was built.
thread_local PGconn** t_capture_slot = nullptr;

class CapturePolicy : public pqxx::connect_direct {
 public:
  explicit CapturePolicy(const std::string& opts) : pqxx::connect_direct(opts), m_slot(t_capture_slot) {}
  handle do_startconnect(handle orig) override { return remember(pqxx::connect_direct::do_startconnect(orig)); }
  handle do_completeconnect(handle orig) override { return remember(pqxx::connect_direct::do_completeconnect(orig)); }
  handle do_dropconnect(handle orig) noexcept override { return remember(pqxx::connect_direct::do_dropconnect(orig)); }
  handle do_disconnect(handle orig) noexcept override { return remember(pqxx::connect_direct::do_disconnect(orig)); }

 private:
  handle remember(handle h) noexcept {
    if (m_slot != nullptr) {
      *m_slot = h;
    }
    return h;
  }
  PGconn** m_slot;
};

using Connection = pqxx::basic_connection_base<CapturePolicy>;

std::string quote_conninfo(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "'";
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// A certificate or TLS file problem in libpq's connect error, as "tls: <which>" (empty when
// the failure is something else): configuration, so exit 2 and never retried. A TLS session
// cut short ("SSL SYSCALL error", "SSL connection has been closed") is not one of these.
std::string tls_problem(const std::string& msg, const ConnectionSettings& s) {
  const std::string ca = s.tls_ca.empty() ? "libpq's root.crt" : fmt::format("tls_ca \"{}\"", s.tls_ca);
  if (contains(msg, "does not match host name")) {
    return fmt::format("tls: the server's certificate does not name host \"{}\"", s.host);
  }
  if (contains(msg, "certificate verify failed")) {
    return fmt::format("tls: the server's certificate does not verify against {}", ca);
  }
  if (contains(msg, "root certificate file") || contains(msg, "could not read root certificate")) {
    return fmt::format("tls: cannot use {}", ca);
  }
  if (contains(msg, "certificate file") || contains(msg, "private key")) {
    return fmt::format("tls: cannot use the client certificate tls_cert \"{}\" with tls_key \"{}\"", s.tls_cert,
                       s.tls_key);
  }
  if (contains(msg, "alert certificate required") || contains(msg, "alert bad certificate") ||
      contains(msg, "alert unknown ca")) {
    return "tls: the server refused the client certificate (tls_cert)";
  }
  if (contains(msg, "server does not support SSL")) {
    return "tls: the server does not offer TLS but sslmode requires it";
  }
  return "";
}

}  // namespace

struct Session::Impl {
  PGconn* handle = nullptr;
  std::unique_ptr<Connection> conn;
};

std::string build_conninfo(const ConnectionSettings& s) {
  std::string ci = fmt::format("host={} port={} dbname={} connect_timeout={} application_name='vstash'",
                               quote_conninfo(s.host), quote_conninfo(std::to_string(s.port)),
                               quote_conninfo(s.database), quote_conninfo(std::to_string(s.connect_timeout_s)));
  if (!s.user.empty()) {
    ci += " user=" + quote_conninfo(s.user);
  }
  if (!s.password.empty()) {
    ci += " password=" + quote_conninfo(s.password);
  }
  // A CA given means the server is to be verified: verify-full unless sslmode says otherwise.
  const std::string sslmode = !s.sslmode.empty() || s.tls_ca.empty() ? s.sslmode : "verify-full";
  if (!sslmode.empty()) {
    ci += " sslmode=" + quote_conninfo(sslmode);
  }
  for (const auto& [key, value] :
       {std::pair{"sslrootcert", &s.tls_ca}, {"sslcert", &s.tls_cert}, {"sslkey", &s.tls_key}}) {
    if (!value->empty()) {
      ci += fmt::format(" {}={}", key, quote_conninfo(*value));
    }
  }
  // Passed at connect time so a reconnected session keeps the limit.
  if (s.statement_timeout_ms > 0) {
    ci += " options=" + quote_conninfo(fmt::format("-c statement_timeout={}", s.statement_timeout_ms));
  }
  return ci;
}

int64_t Result::int_text(int r, int c) const {
  const auto v = get(r, c);
  int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

int64_t Result::int8(int r, int c) const {
  const auto v = get(r, c);
  uint64_t u = 0;
  for (size_t i = 0; i < 8 && i < v.size(); ++i) {
    u = (u << 8) | static_cast<unsigned char>(v[i]);
  }
  return static_cast<int64_t>(u);
}

Session::Session(ConnectionSettings settings, std::vector<std::string> secrets)
    : m_settings(std::move(settings)), m_secrets(std::move(secrets)), m_impl(std::make_unique<Impl>()) {
  if (!m_settings.password.empty()) {
    m_secrets.push_back(m_settings.password);
  }
  m_location = fmt::format("{}:{}/{}", m_settings.host, m_settings.port, m_settings.database);
}

Session::~Session() = default;

std::string Session::scrub(std::string message) const {
  message = util::scrub_secrets(std::move(message), m_secrets);
  // libpq messages carry "FATAL:  " / "ERROR:  " prefixes and trailing hints on new lines.
  for (const char* prefix : {"FATAL:  ", "ERROR:  "}) {
    for (size_t at = message.find(prefix); at != std::string::npos; at = message.find(prefix)) {
      message.erase(at, std::strlen(prefix));
    }
  }
  if (const auto nl = message.find('\n'); nl != std::string::npos) {
    message.resize(nl);
  }
  while (!message.empty() && (message.back() == ' ' || message.back() == '\r' || message.back() == '\t')) {
    message.pop_back();
  }
  return message;
}

void Session::connect() {
  m_impl->conn.reset();
  m_impl->handle = nullptr;
  t_capture_slot = &m_impl->handle;
  try {
    m_impl->conn = std::make_unique<Connection>(build_conninfo(m_settings));
    t_capture_slot = nullptr;
  } catch (const std::exception& e) {
    t_capture_slot = nullptr;
    m_impl->handle = nullptr;
    std::string msg = scrub(e.what());
    // libpq: `connection to server at "h", port p failed: <reason>`; the reason is what matters.
    if (const auto at = msg.find(" failed: "); at != std::string::npos) {
      msg = msg.substr(at + 9);
    }
    const std::string head = fmt::format("{}: cannot connect: ", m_location);
    if (const std::string tls = tls_problem(msg, m_settings); !tls.empty()) {
      throw UsageError(head + tls + " (" + msg + ")");
    }
    if (contains(msg, "password authentication failed") || contains(msg, "no password supplied") ||
        contains(msg, "pg_hba.conf") || contains(msg, "authentication failed") || contains(msg, "does not exist") ||
        contains(msg, "invalid ")) {
      throw UsageError(head + msg);
    }
    if (contains(msg, "Connection refused")) {
      throw RetryableError(head + "connection refused");
    }
    // Timeouts, a server starting up or shutting down, resets: worth retrying.
    throw RetryableError(head + msg);
  }
  if (m_impl->handle == nullptr) {
    throw Error(fmt::format("{}: cannot connect: no libpq handle", m_location));
  }
}

pqxx::connection_base& Session::conn() {
  if (!m_impl->conn || !m_impl->conn->is_open() || m_impl->handle == nullptr ||
      PQstatus(m_impl->handle) != CONNECTION_OK) {
    connect();
  }
  return *m_impl->conn;
}

PGconn* Session::raw() {
  conn();
  return m_impl->handle;
}

std::string Session::quote(const std::string& identifier) { return conn().quote_name(identifier); }

Result Session::exec(const std::string& sql, const std::vector<Param>& params, bool binary_result) {
  PGconn* c = raw();
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const auto& p : params) {
    // libpq sends a text parameter as a C string: a NUL would silently cut it short.
    if (!p.binary && p.value && p.value->find('\0') != std::string::npos) {
      throw UsageError(fmt::format("{}: a value contains a NUL byte, which PostgreSQL text cannot hold", m_location));
    }
    values.push_back(p.value ? p.value->data() : nullptr);
    lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
    formats.push_back(p.binary ? 1 : 0);
  }
  Result res(PQexecParams(c, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(), lengths.data(),
                          formats.data(), binary_result ? 1 : 0));
  const auto st = PQresultStatus(res.raw());
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    return res;
  }
  const char* state = res.raw() ? PQresultErrorField(res.raw(), PG_DIAG_SQLSTATE) : nullptr;
  throw ServerError(state ? state : "", res.raw() ? PQresultErrorMessage(res.raw()) : PQerrorMessage(c));
}

void Session::transact(const std::string& what, const std::function<void(pqxx::work&)>& fn) {
  try {
    pqxx::work txn(conn());
    fn(txn);
    txn.commit();
  } catch (...) {
    rethrow(what);
  }
}

void Session::read(const std::string& what, const std::function<void(pqxx::work&)>& fn) {
  try {
    transact(what, fn);
    return;
  } catch (const RetryableError&) {
    if (m_impl->conn) {
      throw;  // still connected: a timeout or a conflict, not a lost connection
    }
  }
  // The server went away: poll until it accepts connections again (bounded), then once more.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(std::max<int64_t>(m_settings.connect_timeout_s, 1));
  for (auto pause = std::chrono::milliseconds(50);; pause = std::min(pause * 2, std::chrono::milliseconds(1000))) {
    try {
      connect();
      break;
    } catch (const RetryableError&) {
      if (std::chrono::steady_clock::now() + pause >= deadline) {
        throw;
      }
      std::this_thread::sleep_for(pause);
    }
  }
  transact(what, fn);
}

void Session::run(const std::string& what, const std::function<void()>& fn) {
  try {
    fn();
  } catch (...) {
    rethrow(what);
  }
}

void Session::rethrow(const std::string& what) {
  const bool broken = !m_impl->conn || m_impl->handle == nullptr || PQstatus(m_impl->handle) != CONNECTION_OK;
  if (broken) {
    m_impl->conn.reset();  // the next call reconnects
    m_impl->handle = nullptr;
  }
  try {
    throw;
  } catch (const vstash::Error&) {
    throw;
  } catch (const pqxx::sql_error& e) {
    fail(what, e.sqlstate(), e.what());
  } catch (const ServerError& e) {
    fail(what, e.sqlstate(), e.what());
  } catch (const pqxx::in_doubt_error& e) {
    throw RetryableError(
        fmt::format("{}: {}: connection lost while committing; the outcome is unknown", m_location, what));
  } catch (const std::exception& e) {
    if (broken || dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
      throw RetryableError(fmt::format("{}: {}: connection lost: {}", m_location, what, scrub(e.what())));
    }
    throw Error(fmt::format("{}: {}: {}", m_location, what, scrub(e.what())));
  }
}

void Session::fail(const std::string& what, const std::string& sqlstate, const std::string& message) {
  const std::string msg = fmt::format("{}: {}: {}", m_location, what, scrub(message));
  const std::string cls = sqlstate.substr(0, 2);
  if (sqlstate == "57014") {
    throw RetryableError(
        fmt::format("{}: {}: statement timeout ({} ms) exceeded", m_location, what, m_settings.statement_timeout_ms));
  }
  if (cls == "08" || cls == "53" || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03" ||
      sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" || sqlstate.empty()) {
    if (m_impl->handle == nullptr || PQstatus(m_impl->handle) != CONNECTION_OK) {
      m_impl->conn.reset();
      m_impl->handle = nullptr;
    }
    throw RetryableError(msg);
  }
  if (sqlstate == "23505") {
    throw ConflictError(msg);
  }
  if (cls == "22" || cls == "23") {
    throw UsageError(msg);
  }
  throw Error(msg);
}

}  // namespace vstash::backends::pgvector
