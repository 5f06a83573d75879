// SPDX-License-Identifier: MIT
// RAII over the SQLite C API for the local store, and the mapping of SQLite errors to
// vstash errors.
#include <fmt/format.h>
#include <cctype>
#include <filesystem>

#include "backends/local/localstore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::local {

void throw_sqlite(sqlite3* db, int rc, const std::string& path, std::string_view what) {
  const std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      throw RetryableError(fmt::format("{}: {}: store is locked by another writer for more than {} s", path, what,
                                       k_busy_timeout_ms / 1000));
    case SQLITE_NOTADB:
      throw Error(fmt::format("{}: not a vstash local store (not a SQLite database)", path));
    case SQLITE_CORRUPT:
      throw Error(fmt::format("{}: store is corrupt: {}", path, message));
    case SQLITE_FULL:
      throw Error(fmt::format("{}: {}: disk full", path, what));
    default:
      throw Error(fmt::format("{}: {}: {}", path, what, message));
  }
}

Stmt::~Stmt() { reset(); }

void Stmt::reset() {
  sqlite3_reset(m_stmt);
  sqlite3_clear_bindings(m_stmt);
}

Stmt& Stmt::bind(int i, int64_t v) {
  sqlite3_bind_int64(m_stmt, i, v);
  return *this;
}

Stmt& Stmt::bind(int i, const std::string& text) {
  sqlite3_bind_text64(m_stmt, i, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::bind_null(int i) {
  sqlite3_bind_null(m_stmt, i);
  return *this;
}

Stmt& Stmt::bind_static_text(int i, std::string_view text) {
  sqlite3_bind_text64(m_stmt, i, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::bind_static_blob(int i, std::span<const std::byte> blob) {
  // A zero-length blob must still be a blob, not NULL: SQLite reads a null pointer as NULL.
  static const std::byte k_empty{};
  sqlite3_bind_blob64(m_stmt, i, blob.empty() ? &k_empty : blob.data(), blob.size(), SQLITE_STATIC);
  return *this;
}

int Stmt::try_step() { return sqlite3_step(m_stmt); }

bool Stmt::step() {
  const int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  m_conn->fail(rc, "query failed");
}

void Stmt::run() {
  while (step()) {
  }
}

std::string Stmt::text_at(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(m_stmt, col));
  const int n = sqlite3_column_bytes(m_stmt, col);
  return p ? std::string(p, static_cast<size_t>(n)) : std::string();
}

std::span<const std::byte> Stmt::blob_at(int col) const {
  const auto* p = static_cast<const std::byte*>(sqlite3_column_blob(m_stmt, col));
  const int n = sqlite3_column_bytes(m_stmt, col);
  return p ? std::span<const std::byte>(p, static_cast<size_t>(n)) : std::span<const std::byte>();
}

namespace {
// "file:/ABS/PATH?mode=ro[&immutable=1]", every byte but unreserved ones and '/' escaped.
std::string read_only_uri(const std::string& path, bool immutable) {
  std::string uri = "file:";
  for (const unsigned char c : std::filesystem::absolute(path).string()) {
    if (std::isalnum(c) || c == '/' || c == '.' || c == '_' || c == '-' || c == '~') {
      uri += static_cast<char>(c);
    } else {
      uri += fmt::format("%{:02X}", c);
    }
  }
  return uri + (immutable ? "?mode=ro&immutable=1" : "?mode=ro");
}
}  // namespace

Connection::Connection(const std::string& path, OpenMode mode) : m_path(path), m_db(nullptr, &sqlite3_close_v2) {
  sqlite3* db = nullptr;
  // NOMUTEX: the backend hands each connection to one thread at a time.
  const int rc = mode == OpenMode::read_write
                     ? sqlite3_open_v2(path.c_str(), &db,
                                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr)
                     : sqlite3_open_v2(read_only_uri(path, mode == OpenMode::immutable).c_str(), &db,
                                       SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
  m_db.reset(db);
  if (rc != SQLITE_OK) {
    throw Error(fmt::format("{}: cannot open local store: {}", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, k_busy_timeout_ms);
}

Stmt Connection::prepare(const std::string& sql) {
  auto it = m_cache.find(sql);
  if (it == m_cache.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(m_db.get(), sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                      &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      fail(rc, "prepare");
    }
    it = m_cache.emplace(sql, StmtPtr(stmt, &sqlite3_finalize)).first;
  }
  return Stmt(it->second.get(), *this);
}

void Connection::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(m_db.get(), sql.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) {
    fail(rc, sql.substr(0, sql.find(' ')) == "BEGIN" ? "begin transaction" : "statement failed");
  }
}

Transaction::Transaction(Connection& conn, bool write) : m_conn(conn) {
  m_conn.exec(write ? "BEGIN IMMEDIATE" : "BEGIN");
}

Transaction::~Transaction() {
  if (m_open) {
    // Nothing to report from a destructor; a failed rollback leaves SQLite to roll back
    // the journal when the connection next opens.
    sqlite3_exec(m_conn.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

void Transaction::commit() {
  m_conn.exec("COMMIT");
  m_open = false;
}

}  // namespace vstash::backends::local
