// SPDX-License-Identifier: MIT
// NPY header parsing and formatting (numpy's format.py, versions 1.0, 2.0 and 3.0).
#include "src/io/npyheader.hpp"

#include <fmt/format.h>
#include <cstring>
#include <vector>

#include "src/errors.hpp"

namespace vstash::io {

namespace {

constexpr unsigned char k_magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t k_align = 64;
// numpy's own headers are a few hundred bytes; anything this long is corrupt.
constexpr uint64_t k_max_header_len = 1u << 20;

// The few Python literals an NPY header may contain.
struct PyValue {
  enum class Type { str, boolean, none, integer, tuple, list, dict } type = Type::none;
  std::string text;  // str
  int64_t integer = 0;
  bool flag = false;
  std::vector<PyValue> items;     // tuple, list, dict values
  std::vector<std::string> keys;  // dict keys (strings only)
};

class LiteralParser {
 public:
  LiteralParser(const std::string& path, std::string_view s) : m_path(path), m_s(s) {}

  PyValue parse_document() {
    PyValue v = value(0);
    skip_space();
    if (m_pos != m_s.size()) {
      fail("unexpected text after the dict");
    }
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw UsageError(fmt::format("{}: malformed NPY header: {} at offset {}", m_path, what, m_pos));
  }
  void skip_space() {
    while (m_pos < m_s.size() &&
           (m_s[m_pos] == ' ' || m_s[m_pos] == '\n' || m_s[m_pos] == '\t' || m_s[m_pos] == '\r')) {
      ++m_pos;
    }
  }
  bool eat(char c) {
    skip_space();
    if (m_pos < m_s.size() && m_s[m_pos] == c) {
      ++m_pos;
      return true;
    }
    return false;
  }
  bool eat_word(std::string_view w) {
    if (m_s.substr(m_pos, w.size()) == w) {
      m_pos += w.size();
      return true;
    }
    return false;
  }

  PyValue value(int depth) {
    if (depth > 16) {
      fail("nesting too deep");
    }
    skip_space();
    if (m_pos >= m_s.size()) {
      fail("unexpected end");
    }
    PyValue v;
    const char c = m_s[m_pos];
    if (c == '\'' || c == '"') {
      v.type = PyValue::Type::str;
      v.text = string_literal();
    } else if (c == '(' || c == '[' || c == '{') {
      ++m_pos;
      const char close = c == '(' ? ')' : c == '[' ? ']' : '}';
      v.type = c == '(' ? PyValue::Type::tuple : c == '[' ? PyValue::Type::list : PyValue::Type::dict;
      while (!eat(close)) {
        if (v.type == PyValue::Type::dict) {
          skip_space();
          if (m_pos >= m_s.size() || (m_s[m_pos] != '\'' && m_s[m_pos] != '"')) {
            fail("expected a string key");
          }
          v.keys.push_back(string_literal());
          if (!eat(':')) {
            fail("expected ':'");
          }
        }
        v.items.push_back(value(depth + 1));
        if (!eat(',')) {
          if (!eat(close)) {
            fail(fmt::format("expected ',' or '{}'", close));
          }
          break;
        }
      }
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.type = PyValue::Type::integer;
      v.integer = integer();
    } else if (eat_word("True")) {
      v.type = PyValue::Type::boolean;
      v.flag = true;
    } else if (eat_word("False")) {
      v.type = PyValue::Type::boolean;
    } else if (eat_word("None")) {
      v.type = PyValue::Type::none;
    } else {
      fail(fmt::format("unexpected character '{}'", c));
    }
    return v;
  }

  std::string string_literal() {
    const char quote = m_s[m_pos++];
    std::string out;
    while (m_pos < m_s.size() && m_s[m_pos] != quote) {
      if (m_s[m_pos] == '\\') {
        fail("escapes are not supported");
      }
      out += m_s[m_pos++];
    }
    if (m_pos >= m_s.size()) {
      fail("unterminated string");
    }
    ++m_pos;
    return out;
  }

  int64_t integer() {
    const bool negative = m_s[m_pos] == '-';
    if (negative) {
      ++m_pos;
    }
    uint64_t v = 0;
    size_t digits = 0;
    while (m_pos < m_s.size() && m_s[m_pos] >= '0' && m_s[m_pos] <= '9') {
      if (v > (uint64_t{INT64_MAX} - 9) / 10) {
        fail("integer too large");
      }
      v = v * 10 + static_cast<uint64_t>(m_s[m_pos++] - '0');
      ++digits;
    }
    if (digits == 0) {
      fail("expected digits");
    }
    if (m_pos < m_s.size() && m_s[m_pos] == 'L') {  // Python 2 longs in old files
      ++m_pos;
    }
    return negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  }

  const std::string& m_path;
  std::string_view m_s;
  size_t m_pos = 0;
};

NpyDescr parse_descr(const std::string& path, const std::string& text) {
  NpyDescr d;
  d.text = text;
  std::string_view s = text;
  char order = '=';
  if (!s.empty() && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
    order = s[0];
    s.remove_prefix(1);
  }
  if (s.empty()) {
    throw UsageError(fmt::format("{}: malformed NPY header: empty dtype", path));
  }
  const char kind = s[0];
  if (kind == 'O') {
    throw UsageError(
        fmt::format("{}: object arrays (pickled Python objects) are not supported; save with a numeric dtype", path));
  }
  uint64_t size = 0;
  bool has_size = s.size() > 1;
  for (char c : s.substr(1)) {
    if (c < '0' || c > '9' || size > (uint64_t{1} << 31)) {
      has_size = false;
      break;
    }
    size = size * 10 + static_cast<uint64_t>(c - '0');
  }
  auto unsupported = [&](std::string_view why) {
    return UsageError(fmt::format("{}: unsupported dtype '{}' ({})", path, text, why));
  };
  if (!has_size && !(kind == 'U' || kind == 'S' || kind == 'a')) {
    throw unsupported("not a numpy type code");
  }
  d.swap = order == '>';  // the host is little-endian (static_assert in npy.cpp)
  switch (kind) {
    case 'U':
      d.kind = NpyKind::unicode;
      d.itemsize = size * 4;
      return d;
    case 'S':
    case 'a':
      d.kind = NpyKind::bytes;
      d.itemsize = size;
      d.swap = false;
      return d;
    case 'c':
      throw unsupported("complex numbers");
    case 'M':
    case 'm':
      throw unsupported("dates and times");
    case 'V':
      throw unsupported("raw void records");
    default:
      break;
  }
  const char* name = nullptr;
  if (kind == 'f' && (size == 2 || size == 4 || size == 8)) {
    name = size == 2 ? "float16" : size == 4 ? "float32" : "float64";
  } else if ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) {
    static const char* const k_int[] = {"int8", "int16", nullptr, "int32", nullptr, nullptr, nullptr, "int64"};
    static const char* const k_uint[] = {"uint8", "uint16", nullptr, "uint32", nullptr, nullptr, nullptr, "uint64"};
    name = (kind == 'i' ? k_int : k_uint)[size - 1];
  } else if (kind == 'b' && size == 1) {
    name = "bool";
  }
  if (name == nullptr) {
    throw unsupported("not a supported numeric type");
  }
  d.dtype = parse_dtype_name(name);
  d.itemsize = static_cast<size_t>(size);
  if (d.itemsize == 1) {
    d.swap = false;
  }
  return d;
}

}  // namespace

NpyPreamble parse_npy_preamble(const std::string& path, const unsigned char* pre, size_t have, uint64_t file_size) {
  if (have < 6 ? std::memcmp(pre, k_magic, have) != 0 : std::memcmp(pre, k_magic, 6) != 0) {
    throw UsageError(fmt::format("{}: not an NPY file (bad magic)", path));
  }
  if (have < 10) {
    throw UsageError(fmt::format("{}: truncated: NPY preamble is {} bytes, file has {}", path, 10, have));
  }
  NpyPreamble p;
  p.major = pre[6];
  if (p.major < 1 || p.major > 3) {
    throw UsageError(fmt::format("{}: unsupported NPY format version {}.{}", path, pre[6], pre[7]));
  }
  if (p.major == 1) {
    p.header_len = uint64_t{pre[8]} | (uint64_t{pre[9]} << 8);
    p.header_offset = 10;
  } else {
    if (have < 12) {
      throw UsageError(fmt::format("{}: truncated: NPY preamble is {} bytes, file has {}", path, 12, have));
    }
    p.header_len = uint64_t{pre[8]} | (uint64_t{pre[9]} << 8) | (uint64_t{pre[10]} << 16) | (uint64_t{pre[11]} << 24);
    p.header_offset = 12;
  }
  if (p.header_len > k_max_header_len) {
    throw UsageError(fmt::format("{}: corrupt NPY header: length {} is implausible", path, p.header_len));
  }
  if (p.header_offset + p.header_len > file_size) {
    throw UsageError(fmt::format("{}: truncated: header says {} bytes of header, file has {}", path, p.header_len,
                                 file_size - p.header_offset));
  }
  return p;
}

NpyHeader parse_npy_header(const std::string& path, std::string_view text) {
  const PyValue dict = LiteralParser(path, text).parse_document();
  if (dict.type != PyValue::Type::dict) {
    throw UsageError(fmt::format("{}: malformed NPY header: not a dict", path));
  }
  const PyValue* descr = nullptr;
  const PyValue* fortran = nullptr;
  const PyValue* shape = nullptr;
  for (size_t i = 0; i < dict.keys.size(); ++i) {
    const auto& k = dict.keys[i];
    const PyValue** slot = k == "descr" ? &descr : k == "fortran_order" ? &fortran : k == "shape" ? &shape : nullptr;
    if (slot == nullptr) {
      throw UsageError(fmt::format("{}: malformed NPY header: unexpected key '{}'", path, k));
    }
    *slot = &dict.items[i];
  }
  for (auto [v, name] : {std::pair{descr, "descr"}, {fortran, "fortran_order"}, {shape, "shape"}}) {
    if (v == nullptr) {
      throw UsageError(fmt::format("{}: malformed NPY header: missing '{}'", path, name));
    }
  }
  if (descr->type == PyValue::Type::list) {
    throw UsageError(fmt::format("{}: structured dtypes (records) are not supported", path));
  }
  if (descr->type != PyValue::Type::str) {
    throw UsageError(fmt::format("{}: malformed NPY header: 'descr' is not a string", path));
  }
  if (fortran->type != PyValue::Type::boolean) {
    throw UsageError(fmt::format("{}: malformed NPY header: 'fortran_order' is not True or False", path));
  }
  if (shape->type != PyValue::Type::tuple) {
    throw UsageError(fmt::format("{}: malformed NPY header: 'shape' is not a tuple", path));
  }
  NpyHeader h;
  h.descr = parse_descr(path, descr->text);
  h.fortran = fortran->flag;
  uint64_t count = 1;
  for (const auto& d : shape->items) {
    if (d.type != PyValue::Type::integer || d.integer < 0) {
      throw UsageError(fmt::format("{}: malformed NPY header: shape entries must be integers >= 0", path));
    }
    h.shape.push_back(d.integer);
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(d.integer), &count)) {
      throw UsageError(fmt::format("{}: corrupt NPY header: shape {} is too large", path, shape_to_string(h.shape)));
    }
  }
  if (__builtin_mul_overflow(count, static_cast<uint64_t>(h.descr.itemsize), &h.data_bytes) ||
      h.data_bytes > (uint64_t{1} << 62)) {
    throw UsageError(fmt::format("{}: corrupt NPY header: shape {} is too large", path, shape_to_string(h.shape)));
  }
  return h;
}

void check_npy_size(const std::string& path, const NpyHeader& h, uint64_t file_size) {
  const uint64_t have = file_size - h.data_offset;
  if (have < h.data_bytes) {
    throw UsageError(fmt::format("{}: truncated: header says {} bytes of data ({} '{}'), file has {}", path,
                                 h.data_bytes, shape_to_string(h.shape), h.descr.text, have));
  }
  if (have > h.data_bytes) {
    throw UsageError(fmt::format("{}: corrupt: {} bytes after the array data ({} '{}' needs {})", path,
                                 have - h.data_bytes, shape_to_string(h.shape), h.descr.text, h.data_bytes));
  }
}

std::string npy_descr_for(DType dtype) {
  const size_t size = dtype_size(dtype);
  const char kind = dtype == DType::b1                                                                          ? 'b'
                    : dtype_is_float(dtype)                                                                     ? 'f'
                    : (dtype == DType::u8 || dtype == DType::u16 || dtype == DType::u32 || dtype == DType::u64) ? 'u'
                                                                                                                : 'i';
  return fmt::format("{}{}{}", size == 1 ? '|' : '<', kind, size);
}

std::string make_npy_header(const std::string& descr, const Shape& shape) {
  std::string shape_text =
      shape.size() == 1 ? fmt::format("({},)", shape[0]) : fmt::format("({})", fmt::join(shape, ", "));
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape_text);
  int major = 1;
  size_t preamble = 10;
  if (dict.size() + 1 + preamble > 65535) {
    major = 2;
    preamble = 12;
  }
  // Spaces then '\n' so the data starts on a 64-byte boundary, as numpy does.
  const size_t total = (preamble + dict.size() + 1 + k_align - 1) / k_align * k_align;
  dict.append(total - preamble - dict.size() - 1, ' ');
  dict += '\n';
  std::string out(reinterpret_cast<const char*>(k_magic), sizeof(k_magic));
  out += static_cast<char>(major);
  out += '\0';
  const size_t len = dict.size();
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>((len >> 8) & 0xff);
  if (major == 2) {
    out += static_cast<char>((len >> 16) & 0xff);
    out += static_cast<char>((len >> 24) & 0xff);
  }
  return out + dict;
}

}  // namespace vstash::io
