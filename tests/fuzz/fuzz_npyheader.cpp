// SPDX-License-Identifier: MIT
// The NPY header parser (src/io/npyheader.hpp). The input is the start of an NPY file: the
// preamble is checked against the input's size as the file size, then the dict is parsed.
// A header that parses must survive make_npy_header and parse back to the same array.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>

#include "src/io/npyheader.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace vstash::fuzz {

namespace {

bool plain_descr(const std::string& d) {
  for (char c : d) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '<' || c == '>' || c == '|' || c == '=')) {
      return false;
    }
  }
  return true;
}

void check_round_trip(const io::NpyHeader& h) {
  if (!plain_descr(h.descr.text)) {
    return;
  }
  const std::string again = io::make_npy_header(h.descr.text, h.shape);
  const auto* bytes = reinterpret_cast<const unsigned char*>(again.data());
  const io::NpyPreamble p =
      io::parse_npy_preamble("again.npy", bytes, std::min<size_t>(again.size(), 12), again.size());
  const io::NpyHeader back =
      io::parse_npy_header("again.npy", std::string_view(again).substr(p.header_offset, p.header_len));
  if (back.shape != h.shape || back.descr.text != h.descr.text || back.data_bytes != h.data_bytes ||
      p.header_offset + p.header_len != again.size() || again.size() % 64 != 0) {
    std::abort();
  }
}

}  // namespace

int fuzz_npyheader(const uint8_t* data, size_t size) {
  expect_error_or_success(as_text(data, size), [&] {
    const io::NpyPreamble p = io::parse_npy_preamble("fuzz.npy", data, std::min<size_t>(size, 12), size);
    io::NpyHeader h = io::parse_npy_header("fuzz.npy", as_text(data, size).substr(p.header_offset, p.header_len));
    h.data_offset = p.header_offset + p.header_len;
    check_round_trip(h);
    io::check_npy_size("fuzz.npy", h, size);
  });
  return 0;
}

}  // namespace vstash::fuzz

VSTASH_FUZZ_ENTRY(fuzz_npyheader)
