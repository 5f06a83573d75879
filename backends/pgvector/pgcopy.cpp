// SPDX-License-Identifier: MIT
// Binary COPY encoding and streaming through libpq.
#include "backends/pgvector/pgcopy.hpp"

#include <fmt/format.h>
#include <cstring>

#include "backends/pgvector/pgconnection.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pgvector {

namespace {
constexpr char k_signature[] = "PGCOPY\n\377\r\n";  // 11 bytes with the trailing NUL

std::string conn_error(PGconn* conn) { return PQerrorMessage(conn); }

void drain_and_throw(PGconn* conn) {
  // Collect the COPY's final status; the first error wins.
  std::string state;
  std::string message;
  while (PGresult* r = PQgetResult(conn)) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && message.empty()) {
      const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      state = s ? s : "";
      message = PQresultErrorMessage(r);
    }
    PQclear(r);
  }
  if (!message.empty()) {
    throw ServerError(state, message);
  }
}
}  // namespace

CopyEncoder::CopyEncoder(Sink sink, size_t flush_bytes) : m_sink(std::move(sink)), m_flush_bytes(flush_bytes) {
  m_buf.reserve(flush_bytes + 4096);
}

void CopyEncoder::put16(uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  m_buf.append(b, 2);
}
void CopyEncoder::put32(uint32_t v) {
  const uint32_t be = __builtin_bswap32(v);
  m_buf.append(reinterpret_cast<const char*>(&be), 4);
}
void CopyEncoder::put64(uint64_t v) {
  const uint64_t be = __builtin_bswap64(v);
  m_buf.append(reinterpret_cast<const char*>(&be), 8);
}
void CopyEncoder::maybe_flush() {
  if (m_buf.size() >= m_flush_bytes) {
    m_sink(m_buf);
    m_buf.clear();
  }
}

void CopyEncoder::header() {
  m_buf.append(k_signature, sizeof k_signature);
  put32(0);  // flags
  put32(0);  // header extension length
}
void CopyEncoder::row(int16_t fields) {
  maybe_flush();
  put16(static_cast<uint16_t>(fields));
}
void CopyEncoder::null() { put32(0xffffffffu); }
void CopyEncoder::text(std::string_view s) {
  put32(static_cast<uint32_t>(s.size()));
  m_buf.append(s);
}
void CopyEncoder::int8(int64_t v) {
  put32(8);
  put64(static_cast<uint64_t>(v));
}
void CopyEncoder::bytes(std::span<const std::byte> b) {
  put32(static_cast<uint32_t>(b.size()));
  m_buf.append(reinterpret_cast<const char*>(b.data()), b.size());
}
void CopyEncoder::vector(const float* v, size_t dim) {
  put32(static_cast<uint32_t>(4 + 4 * dim));
  put16(static_cast<uint16_t>(dim));
  put16(0);
  const size_t at = m_buf.size();
  m_buf.resize(at + 4 * dim);
  char* out = m_buf.data() + at;
  for (size_t i = 0; i < dim; ++i) {
    uint32_t u = 0;
    std::memcpy(&u, v + i, 4);
    u = __builtin_bswap32(u);
    std::memcpy(out + 4 * i, &u, 4);
  }
}
void CopyEncoder::jsonb(std::string_view json_text) {
  put32(static_cast<uint32_t>(json_text.size() + 1));
  m_buf.push_back('\1');
  m_buf.append(json_text);
}
void CopyEncoder::finish() {
  put16(0xffff);
  if (!m_buf.empty()) {
    m_sink(m_buf);
    m_buf.clear();
  }
}

void copy_in(PGconn* conn, const std::string& copy_sql, const std::function<void(CopyEncoder&)>& produce) {
  PGresult* start = PQexec(conn, copy_sql.c_str());
  if (PQresultStatus(start) != PGRES_COPY_IN) {
    const char* s = start ? PQresultErrorField(start, PG_DIAG_SQLSTATE) : nullptr;
    std::string state = s ? s : "";
    std::string message = start ? PQresultErrorMessage(start) : conn_error(conn);
    PQclear(start);
    throw ServerError(state, message);
  }
  PQclear(start);
  try {
    CopyEncoder enc([conn](std::string_view chunk) {
      if (PQputCopyData(conn, chunk.data(), static_cast<int>(chunk.size())) != 1) {
        throw ServerError("", conn_error(conn));
      }
    });
    enc.header();
    produce(enc);
    enc.finish();
  } catch (...) {
    if (PQstatus(conn) == CONNECTION_OK) {
      PQputCopyEnd(conn, "vstash: ingest aborted");
      while (PGresult* r = PQgetResult(conn)) {
        PQclear(r);
      }
    }
    throw;
  }
  if (PQputCopyEnd(conn, nullptr) != 1) {
    throw ServerError("", conn_error(conn));
  }
  drain_and_throw(conn);
}

void encode_rows(CopyEncoder& enc, const DatasetSpec& spec, const RowBatch& batch,
                 const std::vector<int64_t>& indices) {
  const auto dim = static_cast<size_t>(spec.dimension());
  const bool f32 = batch.data.dtype() == DType::f32;
  const bool keep_sample = spec.dtype != DType::f32;
  std::vector<float> converted;
  std::string md;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto r = static_cast<int64_t>(i);
    if (batch.ids[i].find('\0') != std::string::npos) {
      throw UsageError(fmt::format("dataset \"{}\": row {}: id contains a NUL byte, which PostgreSQL text cannot hold",
                                   spec.name, i));
    }
    enc.row(6);
    enc.text(batch.ids[i]);
    enc.int8(indices[i]);
    if (f32) {
      enc.vector(reinterpret_cast<const float*>(batch.data.row(r).data()), dim);
    } else {
      converted = batch.data.row_as_float32(r);
      enc.vector(converted.data(), dim);
    }
    if (keep_sample) {
      enc.bytes(batch.data.row(r));
    } else {
      enc.null();
    }
    if (batch.labels) {
      enc.bytes(batch.labels->row(r));
    } else {
      enc.null();
    }
    if (batch.metadata.empty() || batch.metadata[i].is_null()) {
      enc.null();
    } else {
      md = batch.metadata[i].dump();
      // nlohmann escapes a NUL as \u0000, which jsonb refuses; say so before the server does.
      if (md.find("\\u0000") != std::string::npos) {
        throw UsageError(
            fmt::format("dataset \"{}\": row \"{}\": metadata contains a NUL character, which "
                        "PostgreSQL jsonb cannot hold",
                        spec.name, batch.ids[i]));
      }
      enc.jsonb(md);
    }
  }
}

std::vector<float> decode_vector(std::string_view wire) {
  if (wire.size() < 4) {
    throw Error("pgvector: short vector value");
  }
  const size_t dim =
      (static_cast<size_t>(static_cast<unsigned char>(wire[0])) << 8) | static_cast<unsigned char>(wire[1]);
  if (wire.size() != 4 + 4 * dim) {
    throw Error(fmt::format("pgvector: vector value of {} bytes for {} dimensions", wire.size(), dim));
  }
  std::vector<float> out(dim);
  for (size_t i = 0; i < dim; ++i) {
    uint32_t u = 0;
    std::memcpy(&u, wire.data() + 4 + 4 * i, 4);
    u = __builtin_bswap32(u);
    std::memcpy(&out[i], &u, 4);
  }
  return out;
}

std::string_view jsonb_text(std::string_view wire) {
  if (wire.empty() || wire[0] != '\1') {
    throw Error("pgvector: unexpected jsonb wire version");
  }
  return wire.substr(1);
}

}  // namespace vstash::backends::pgvector
