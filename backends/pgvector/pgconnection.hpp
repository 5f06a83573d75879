// SPDX-License-Identifier: MIT
// One PostgreSQL session for the pgvector backend: a libpqxx connection (transactions,
// identifier quoting) plus the libpq handle under it for binary COPY and binary results,
// and the single place where server and libpq errors become vstash errors.
#pragma once

#include <libpq-fe.h>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

namespace vstash::backends::pgvector {

struct ConnectionSettings {
  std::string host = "localhost";
  int64_t port = 5432;
  std::string database = "postgres";
  std::string user;      // empty: libpq's default
  std::string password;  // never printed
  std::string sslmode;   // empty: libpq's default ("prefer"), or verify-full when tls_ca is set
  std::string tls_ca;    // PEM files: sslrootcert, sslcert, sslkey (empty: libpq's defaults)
  std::string tls_cert;
  std::string tls_key;
  int64_t connect_timeout_s = 10;
  int64_t statement_timeout_ms = 0;  // 0: no limit
};

// libpq's conninfo with every value single-quoted and escaped, so a value holding spaces,
// quotes or '=' cannot add options. Holds the password: never print it.
std::string build_conninfo(const ConnectionSettings& s);

// A bound parameter: text unless binary; nullopt is SQL NULL.
struct Param {
  std::optional<std::string> value;
  bool binary = false;
  Param() = default;
  Param(std::string v) : value(std::move(v)) {}    // NOLINT: implicit on purpose
  Param(const char* v) : value(std::string(v)) {}  // NOLINT
  Param(int64_t v) : value(std::to_string(v)) {}   // NOLINT
  static Param bytes(std::string v) {
    Param p(std::move(v));
    p.binary = true;
    return p;
  }
};

// An owned PGresult.
class Result {
 public:
  explicit Result(PGresult* r) : m_res(r, &PQclear) {}
  int rows() const { return PQntuples(m_res.get()); }
  bool is_null(int r, int c) const { return PQgetisnull(m_res.get(), r, c) != 0; }
  // The raw value (text, or the binary wire form for binary results).
  std::string_view get(int r, int c) const {
    return {PQgetvalue(m_res.get(), r, c), static_cast<size_t>(PQgetlength(m_res.get(), r, c))};
  }
  std::string text(int r, int c) const { return std::string(get(r, c)); }
  int64_t int_text(int r, int c) const;  // a text-format integer
  int64_t int8(int r, int c) const;      // a binary-format int8
  PGresult* raw() const { return m_res.get(); }

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> m_res;
};

class Session {
 public:
  Session(ConnectionSettings settings, std::vector<std::string> secrets);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // "host:port/database", for messages.
  const std::string& location() const { return m_location; }
  const ConnectionSettings& settings() const { return m_settings; }

  // The open connection, connecting (or reconnecting after a broken one) first.
  pqxx::connection_base& conn();
  PGconn* raw();
  std::string quote(const std::string& identifier);

  // Runs one statement with bound parameters on the current connection (inside whatever
  // transaction is open). binary_result asks for the binary wire format of every column.
  Result exec(const std::string& sql, const std::vector<Param>& params = {}, bool binary_result = false);

  // Runs fn inside a pqxx::work and commits; every exception leaves as a vstash error.
  // fn returns normally to commit. what names the operation for messages.
  void transact(const std::string& what, const std::function<void(pqxx::work&)>& fn);
  // transact for a read that only assigns its results (so running it twice is harmless): when
  // the connection is lost before or during it (a server restart, a failover), the session
  // reconnects, waiting up to connect_timeout seconds for the server to accept connections,
  // and runs fn once more. Other errors, and a second loss, leave as transact's do.
  void read(const std::string& what, const std::function<void(pqxx::work&)>& fn);
  // Like transact without a transaction wrapper (for statements such as CREATE INDEX that
  // manage their own).
  void run(const std::string& what, const std::function<void()>& fn);

  // Converts the exception being handled into a vstash error and throws it; drops a
  // broken connection so the next call reconnects.
  [[noreturn]] void rethrow(const std::string& what);
  // A vstash error for a server error (SQLSTATE + message).
  [[noreturn]] void fail(const std::string& what, const std::string& sqlstate, const std::string& message);

  // Removes secrets and newlines from a server or libpq message.
  std::string scrub(std::string message) const;

 private:
  void connect();

  ConnectionSettings m_settings;
  std::vector<std::string> m_secrets;
  std::string m_location;
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// A server error seen on the raw libpq path, carried to Session::rethrow.
class ServerError : public std::runtime_error {
 public:
  ServerError(std::string sqlstate, const std::string& message)
      : std::runtime_error(message), m_sqlstate(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return m_sqlstate; }

 private:
  std::string m_sqlstate;
};

}  // namespace vstash::backends::pgvector
