// SPDX-License-Identifier: MIT
// Content digests of rows and datasets, for `vstash check` and `copy --verify`: two stores
// hold the same row when its digest is equal, whatever each store does with the bytes on the
// way (blobs, jsonb, payload JSON). Not a cryptographic hash: it tells copies apart from
// accidents (a lost row, a changed float, a truncated label), not from an adversary.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "backends/backend.hpp"

namespace vstash::transfer {

// 128 bits, printed as 32 hex digits.
struct Digest {
  std::array<uint64_t, 2> words{};
  bool operator==(const Digest&) const = default;
  std::string hex() const;
};

// An incremental 128-bit hash (two multiply-rotate lanes over 8-byte words, murmur's
// finalizer). Each field is fed with its length first, so ("ab","c") and ("a","bc") differ.
class Hasher {
 public:
  void field(std::span<const std::byte> bytes);
  void field(std::string_view text);
  void number(uint64_t value);
  Digest finish() const;

 private:
  void word(uint64_t w);
  uint64_t m_a = 0x9e3779b97f4a7c15ULL;
  uint64_t m_b = 0xc2b2ae3d27d4eb4fULL;
  uint64_t m_length = 0;
};

// Row metadata in canonical form, so that stores which keep JSON differently agree:
// - object keys sorted bytewise (nlohmann's object is a std::map), at every depth;
// - null metadata and the empty object are the same (no metadata);
// - a number is its value, not its spelling: an integral float within +-2^53 is written as
//   that integer (1.0 and 1 are one value to every store's filter, and Pinecone keeps every
//   number as float64), other floats in the shortest form that reads back to the same double,
//   unsigned integers as plain integers;
// - strings as JSON escapes them (UTF-8 kept, control characters escaped).
std::string canonical_metadata(const nlohmann::json& metadata);

// The digest of row i of a batch: id, sample bytes (the dataset's dtype and row shape, native
// byte order), label bytes (or "no label"), canonical metadata. The index is not part of it:
// a dataset's order is in dataset_digest.
Digest row_digest(const backends::RowBatch& batch, size_t i);

// The digest of a dataset read in index order: count and row digests in that order.
class DatasetDigest {
 public:
  void add(const Digest& row);
  Digest finish() const;
  int64_t rows() const { return m_rows; }

 private:
  Hasher m_hasher;
  int64_t m_rows = 0;
};

}  // namespace vstash::transfer
