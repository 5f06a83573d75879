// SPDX-License-Identifier: MIT
// PostgreSQL's binary COPY format and pgvector's binary vector form: the encoder that
// streams rows to COPY ... FROM STDIN (FORMAT BINARY) in bounded memory, and decoders for
// the same wire forms in binary query results.
#pragma once

#include <libpq-fe.h>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::backends::pgvector {

// Appends COPY BINARY fields to a buffer and hands it to the sink whenever it passes
// flush_bytes, so memory stays bounded whatever the row count.
class CopyEncoder {
 public:
  using Sink = std::function<void(std::string_view)>;
  CopyEncoder(Sink sink, size_t flush_bytes = size_t{1} << 20);

  void header();
  void row(int16_t fields);
  void null();
  void text(std::string_view s);
  void int8(int64_t v);
  void bytes(std::span<const std::byte> b);
  // pgvector's binary form: int16 dim, int16 unused, float4[dim], all big-endian.
  void vector(const float* v, size_t dim);
  void jsonb(std::string_view json_text);
  // Trailer, then flushes what is left.
  void finish();

 private:
  void put16(uint16_t v);
  void put32(uint32_t v);
  void put64(uint64_t v);
  void maybe_flush();

  Sink m_sink;
  size_t m_flush_bytes;
  std::string m_buf;
};

// The rows tables' columns in COPY order.
inline constexpr const char* k_row_columns = "id, idx, embedding, sample, label, metadata";

// Runs copy_sql (a COPY ... FROM STDIN (FORMAT BINARY)) and feeds it from produce. On any
// failure the COPY is ended with an error and ServerError is thrown.
void copy_in(PGconn* conn, const std::string& copy_sql, const std::function<void(CopyEncoder&)>& produce);

// Encodes batch rows as the COPY rows of a rows table (k_row_columns). The exact sample goes
// to bytea only when the float32 vector cannot reproduce it (dtype other than float32).
void encode_rows(CopyEncoder& enc, const DatasetSpec& spec, const RowBatch& batch, const std::vector<int64_t>& indices);

// Binary result decoders.
std::vector<float> decode_vector(std::string_view wire);
// jsonb's binary form is a version byte then the text.
std::string_view jsonb_text(std::string_view wire);

}  // namespace vstash::backends::pgvector
