// SPDX-License-Identifier: MIT
#include "src/util/base64.hpp"

#include <fmt/format.h>
#include <array>

#include "src/errors.hpp"

namespace vstash::util {

namespace {
constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> make_reverse() {
  std::array<int8_t, 256> r{};
  for (auto& v : r) {
    v = -1;
  }
  for (int i = 0; i < 64; ++i) {
    r[static_cast<unsigned char>(k_alphabet[i])] = static_cast<int8_t>(i);
  }
  return r;
}
constexpr auto k_reverse = make_reverse();
}  // namespace

std::string base64_encode(std::span<const std::byte> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto b = [&](size_t k) { return static_cast<uint32_t>(std::to_integer<uint8_t>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (b(i) << 16) | (b(i + 1) << 8) | b(i + 2);
    out += k_alphabet[(v >> 18) & 63];
    out += k_alphabet[(v >> 12) & 63];
    out += k_alphabet[(v >> 6) & 63];
    out += k_alphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = b(i) << 16;
    if (rest == 2) {
      v |= b(i + 1) << 8;
    }
    out += k_alphabet[(v >> 18) & 63];
    out += k_alphabet[(v >> 12) & 63];
    out += rest == 2 ? k_alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::vector<std::byte> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    throw Error(fmt::format("invalid base64: length {} is not a multiple of 4", text.size()));
  }
  std::vector<std::byte> out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int32_t v = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++pad;
        v <<= 6;
        continue;
      }
      const int8_t d = k_reverse[static_cast<unsigned char>(c)];
      if (d < 0 || pad > 0) {
        throw Error(fmt::format("invalid base64 at offset {}", i + j));
      }
      v = (v << 6) | d;
    }
    out.push_back(static_cast<std::byte>((v >> 16) & 0xff));
    if (pad < 2) {
      out.push_back(static_cast<std::byte>((v >> 8) & 0xff));
    }
    if (pad < 1) {
      out.push_back(static_cast<std::byte>(v & 0xff));
    }
  }
  return out;
}

}  // namespace vstash::util
