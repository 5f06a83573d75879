// SPDX-License-Identifier: MIT
#include "workflows/transfer/digest.hpp"

#include <fmt/format.h>
#include <cmath>
#include <cstring>

namespace vstash::transfer {

namespace {

constexpr uint64_t k_mul_a = 0x87c37b91114253d5ULL;
constexpr uint64_t k_mul_b = 0x4cf5ad432745937fULL;

uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t fmix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

constexpr double k_exact_int_limit = 9007199254740992.0;  // 2^53

nlohmann::json canonical(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [k, v] : j.items()) {
        out[k] = canonical(v);
      }
      return out;
    }
    case nlohmann::json::value_t::array: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& v : j) {
        out.push_back(canonical(v));
      }
      return out;
    }
    case nlohmann::json::value_t::number_float: {
      const double d = j.get<double>();
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) <= k_exact_int_limit) {
        return static_cast<int64_t>(d);
      }
      return d;
    }
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) {
        return static_cast<int64_t>(u);
      }
      return j;
    }
    default:
      return j;
  }
}

}  // namespace

std::string Digest::hex() const { return fmt::format("{:016x}{:016x}", words[0], words[1]); }

void Hasher::word(uint64_t w) {
  m_a = rotl(m_a ^ (w * k_mul_a), 31) * k_mul_b + 0x52dce729;
  m_b = rotl(m_b ^ (w * k_mul_b), 33) * k_mul_a + 0x38495ab5;
}

void Hasher::number(uint64_t value) {
  word(value);
  m_length += 8;
}

void Hasher::field(std::span<const std::byte> bytes) {
  number(bytes.size());
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    word(w);
  }
  if (i < bytes.size()) {
    uint64_t w = 0;
    std::memcpy(&w, bytes.data() + i, bytes.size() - i);
    word(w ^ (uint64_t{0xff} << 56));
  }
  m_length += bytes.size();
}

void Hasher::field(std::string_view text) { field(std::as_bytes(std::span(text.data(), text.size()))); }

Digest Hasher::finish() const {
  uint64_t a = m_a ^ m_length;
  uint64_t b = m_b ^ m_length;
  a += b;
  b += a;
  a = fmix(a);
  b = fmix(b);
  a += b;
  b += a;
  return Digest{{a, b}};
}

std::string canonical_metadata(const nlohmann::json& metadata) {
  if (metadata.is_null()) {
    return "{}";
  }
  return canonical(metadata).dump();
}

Digest row_digest(const backends::RowBatch& batch, size_t i) {
  Hasher h;
  h.field(batch.ids.at(i));
  h.field(batch.data.row(static_cast<int64_t>(i)));
  if (batch.labels) {
    h.number(1);
    h.field(batch.labels->row(static_cast<int64_t>(i)));
  } else {
    h.number(0);
  }
  h.field(canonical_metadata(i < batch.metadata.size() ? batch.metadata[i] : nlohmann::json()));
  return h.finish();
}

void DatasetDigest::add(const Digest& row) {
  m_hasher.number(row.words[0]);
  m_hasher.number(row.words[1]);
  ++m_rows;
}

Digest DatasetDigest::finish() const {
  Hasher h = m_hasher;
  h.number(static_cast<uint64_t>(m_rows));
  return h.finish();
}

}  // namespace vstash::transfer
