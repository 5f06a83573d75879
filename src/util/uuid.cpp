// SPDX-License-Identifier: MIT
// SHA-1 (FIPS 180-4), RFC 4122 version-5 UUIDs and UUID canonicalisation.
#include "src/util/uuid.hpp"

#include <array>
#include <cctype>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "src/errors.hpp"

namespace vstash::util {

namespace {

constexpr char k_hex[] = "0123456789abcdef";

class Sha1 {
 public:
  void update(const uint8_t* data, size_t n) {
    m_length += n;
    for (size_t i = 0; i < n; ++i) {
      m_block[m_used++] = data[i];
      if (m_used == 64) {
        compress();
        m_used = 0;
      }
    }
  }

  std::array<uint8_t, 20> finish() {
    uint64_t bits = m_length * 8;
    uint8_t pad = 0x80;
    update(&pad, 1);
    uint8_t zero = 0;
    while (m_used != 56) {
      update(&zero, 1);
    }
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) {
      len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    }
    update(len, 8);
    std::array<uint8_t, 20> digest{};
    for (int i = 0; i < 5; ++i) {
      for (int b = 0; b < 4; ++b) {
        digest[static_cast<size_t>(i * 4 + b)] = static_cast<uint8_t>(m_h[i] >> (24 - 8 * b));
      }
    }
    return digest;
  }

 private:
  static uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

  void compress() {
    uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t{m_block[i * 4]} << 24) | (uint32_t{m_block[i * 4 + 1]} << 16) |
             (uint32_t{m_block[i * 4 + 2]} << 8) | uint32_t{m_block[i * 4 + 3]};
    }
    for (int i = 16; i < 80; ++i) {
      w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    uint32_t a = m_h[0], b = m_h[1], c = m_h[2], d = m_h[3], e = m_h[4];
    for (int i = 0; i < 80; ++i) {
      uint32_t f = 0;
      uint32_t k = 0;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDC;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6;
      }
      uint32_t t = rotl(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = t;
    }
    m_h[0] += a;
    m_h[1] += b;
    m_h[2] += c;
    m_h[3] += d;
    m_h[4] += e;
  }

  uint32_t m_h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  uint8_t m_block[64] = {};
  size_t m_used = 0;
  uint64_t m_length = 0;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

std::string format_uuid(const uint8_t* bytes) {
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out.push_back('-');
    }
    out.push_back(k_hex[bytes[i] >> 4]);
    out.push_back(k_hex[bytes[i] & 0xF]);
  }
  return out;
}

// 16 bytes from a canonical (lower-case hyphenated) UUID.
std::array<uint8_t, 16> uuid_bytes(const std::string& canonical) {
  std::array<uint8_t, 16> bytes{};
  size_t j = 0;
  for (size_t i = 0; i < canonical.size(); i += (canonical[i] == '-') ? 1 : 2) {
    if (canonical[i] == '-') {
      continue;
    }
    bytes[j++] = static_cast<uint8_t>(hex_value(canonical[i]) * 16 + hex_value(canonical[i + 1]));
  }
  return bytes;
}

}  // namespace

std::string sha1_hex(std::string_view data) {
  Sha1 sha;
  sha.update(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  auto digest = sha.finish();
  std::string out;
  for (uint8_t b : digest) {
    out.push_back(k_hex[b >> 4]);
    out.push_back(k_hex[b & 0xF]);
  }
  return out;
}

std::string uuid_v5(std::string_view namespace_uuid, std::string_view name) {
  auto ns = canonical_uuid(namespace_uuid);
  if (!ns) {
    throw UsageError(fmt::format("\"{}\": not a uuid namespace", namespace_uuid));
  }
  auto ns_bytes = uuid_bytes(*ns);
  Sha1 sha;
  sha.update(ns_bytes.data(), ns_bytes.size());
  sha.update(reinterpret_cast<const uint8_t*>(name.data()), name.size());
  auto digest = sha.finish();
  digest[6] = static_cast<uint8_t>((digest[6] & 0x0F) | 0x50);  // version 5
  digest[8] = static_cast<uint8_t>((digest[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return format_uuid(digest.data());
}

std::optional<std::string> canonical_uuid(std::string_view s) {
  if (s.size() == 45 && (s.substr(0, 9) == "urn:uuid:" || s.substr(0, 9) == "URN:UUID:")) {
    s.remove_prefix(9);
  } else if (s.size() == 38 && s.front() == '{' && s.back() == '}') {
    s = s.substr(1, 36);
  }
  bool hyphenated = s.size() == 36;
  if (!hyphenated && s.size() != 32) {
    return std::nullopt;
  }
  uint8_t bytes[16];
  size_t j = 0;
  for (size_t i = 0; i < s.size();) {
    if (hyphenated && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (s[i] != '-') {
        return std::nullopt;
      }
      ++i;
      continue;
    }
    int hi = hex_value(s[i]);
    int lo = hex_value(s[i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    bytes[j++] = static_cast<uint8_t>(hi * 16 + lo);
    i += 2;
  }
  return format_uuid(bytes);
}

}  // namespace vstash::util
