// SPDX-License-Identifier: MIT
#include "src/array.hpp"

#include <fmt/format.h>
#include <bit>
#include <cstring>
#include <limits>

#include "src/errors.hpp"

namespace vstash {

namespace {
struct DTypeInfo {
  DType type;
  std::string_view name;
  std::string_view short_name;  // numpy's kind+size code
  size_t size;
};
constexpr DTypeInfo k_dtypes[] = {
    {DType::f16, "float16", "f2", 2}, {DType::f32, "float32", "f4", 4}, {DType::f64, "float64", "f8", 8},
    {DType::i8, "int8", "i1", 1},     {DType::i16, "int16", "i2", 2},   {DType::i32, "int32", "i4", 4},
    {DType::i64, "int64", "i8", 8},   {DType::u8, "uint8", "u1", 1},    {DType::u16, "uint16", "u2", 2},
    {DType::u32, "uint32", "u4", 4},  {DType::u64, "uint64", "u8", 8},  {DType::b1, "bool", "b1", 1},
};
const DTypeInfo& info(DType t) { return k_dtypes[static_cast<size_t>(t)]; }
}  // namespace

size_t dtype_size(DType t) { return info(t).size; }
std::string_view dtype_name(DType t) { return info(t).name; }
bool dtype_is_float(DType t) { return t == DType::f16 || t == DType::f32 || t == DType::f64; }

DType parse_dtype_name(std::string_view name) {
  std::string_view n = name;
  if (!n.empty() && (n[0] == '<' || n[0] == '|' || n[0] == '=')) {
    n.remove_prefix(1);
  }
  for (const auto& d : k_dtypes) {
    if (n == d.name || n == d.short_name) {
      return d.type;
    }
  }
  if (n == "?") {
    return DType::b1;
  }
  throw UsageError(fmt::format("unknown dtype \"{}\"", name));
}

int64_t shape_product(std::span<const int64_t> shape) {
  // Shapes come from files and server replies: a product that overflows (or whose bytes
  // would, at the widest dtype) is refused rather than wrapped into a small wrong size.
  constexpr int64_t k_max_elements = std::numeric_limits<int64_t>::max() / 16;
  int64_t n = 1;
  for (auto d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n) || n > k_max_elements) {
      throw UsageError(fmt::format("array shape {} is negative or too large", shape_to_string(shape)));
    }
  }
  return n;
}

std::string shape_to_string(std::span<const int64_t> shape) {
  if (shape.size() == 1) {
    return fmt::format("({},)", shape[0]);
  }
  return fmt::format("({})", fmt::join(shape, ", "));
}

Array::Array(DType dtype, Shape shape) : m_dtype(dtype), m_shape(std::move(shape)) {
  m_bytes.resize(static_cast<size_t>(shape_product(m_shape)) * dtype_size(dtype));
}

namespace {
void check_byte_count(DType dtype, const Shape& shape, size_t have) {
  const size_t want = static_cast<size_t>(shape_product(shape)) * dtype_size(dtype);
  if (have != want) {
    throw Error(
        fmt::format("array of {} {} needs {} bytes, got {}", dtype_name(dtype), shape_to_string(shape), want, have));
  }
}
}  // namespace

Array::Array(DType dtype, Shape shape, std::vector<std::byte> bytes)
    : m_dtype(dtype), m_shape(std::move(shape)), m_bytes(std::move(bytes)) {
  check_byte_count(m_dtype, m_shape, m_bytes.size());
}

Array Array::view(DType dtype, Shape shape, std::span<const std::byte> bytes, std::shared_ptr<const void> owner) {
  Array a;
  a.m_dtype = dtype;
  a.m_shape = std::move(shape);
  check_byte_count(a.m_dtype, a.m_shape, bytes.size());
  if (!bytes.empty()) {  // an empty view is just an empty array
    a.m_view = bytes.data();
    a.m_view_size = bytes.size();
    a.m_owner = std::move(owner);
  }
  return a;
}

std::vector<std::byte>& Array::own() {
  if (m_view != nullptr) {
    m_bytes.assign(m_view, m_view + m_view_size);
    m_view = nullptr;
    m_view_size = 0;
    m_owner.reset();
  }
  return m_bytes;
}

bool Array::operator==(const Array& other) const {
  const auto a = bytes();
  const auto b = other.bytes();
  return m_dtype == other.m_dtype && m_shape == other.m_shape && std::equal(a.begin(), a.end(), b.begin(), b.end());
}

Shape Array::row_shape() const { return m_shape.empty() ? Shape{} : Shape(m_shape.begin() + 1, m_shape.end()); }

size_t Array::row_bytes() const {
  auto rs = row_shape();
  return static_cast<size_t>(shape_product(rs)) * dtype_size(m_dtype);
}

std::span<const std::byte> Array::row(int64_t i) const {
  const size_t rb = row_bytes();
  return {data() + static_cast<size_t>(i) * rb, rb};
}
std::span<std::byte> Array::row(int64_t i) {
  const size_t rb = row_bytes();
  return {data() + static_cast<size_t>(i) * rb, rb};
}

Array Array::slice_rows(int64_t begin, int64_t count) const {
  Shape s = m_shape;
  if (s.empty()) {
    s = {1};
  }
  s[0] = count;
  const size_t rb = row_bytes();
  const std::byte* from = data() + static_cast<size_t>(begin) * rb;
  std::vector<std::byte> b(from, from + static_cast<size_t>(count) * rb);
  return Array(m_dtype, std::move(s), std::move(b));
}

void Array::append_rows(const Array& other) {
  if (m_shape.empty() && nbytes() == 0) {
    *this = other;
    return;
  }
  if (other.dtype() != m_dtype || other.row_shape() != row_shape()) {
    throw UsageError(fmt::format("cannot append {} rows of shape {} to {} rows of shape {}", dtype_name(other.dtype()),
                                 shape_to_string(other.row_shape()), dtype_name(m_dtype),
                                 shape_to_string(row_shape())));
  }
  if (&other == this) {
    const Array copy = other;
    append_rows(copy);
    return;
  }
  own();
  const auto more = other.bytes();
  m_bytes.insert(m_bytes.end(), more.begin(), more.end());
  m_shape[0] += other.rows();
}

double Array::element_as_double(int64_t i) const {
  const std::byte* p = data() + static_cast<size_t>(i) * dtype_size(m_dtype);
  auto load = [p]<class T>(T) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return static_cast<double>(v);
  };
  switch (m_dtype) {
    case DType::f16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return half_to_float(h);
    }
    case DType::f32:
      return load(float{});
    case DType::f64:
      return load(double{});
    case DType::i8:
      return load(int8_t{});
    case DType::i16:
      return load(int16_t{});
    case DType::i32:
      return load(int32_t{});
    case DType::i64:
      return load(int64_t{});
    case DType::u8:
      return load(uint8_t{});
    case DType::u16:
      return load(uint16_t{});
    case DType::u32:
      return load(uint32_t{});
    case DType::u64:
      return load(uint64_t{});
    case DType::b1:
      return std::to_integer<int>(*p) != 0 ? 1.0 : 0.0;
  }
  return 0.0;
}

namespace {
// True if any of n values of width W has every exponent bit set (NaN or Inf). Branch-free
// over a row so the compiler can vectorise it.
template <class Bits>
bool any_nonfinite(const std::byte* p, int64_t n, Bits exponent) {
  Bits hit = 0;
  for (int64_t j = 0; j < n; ++j) {
    Bits v;
    std::memcpy(&v, p + static_cast<size_t>(j) * sizeof(Bits), sizeof(Bits));
    hit |= static_cast<Bits>((v & exponent) == exponent);
  }
  return hit != 0;
}
}  // namespace

int64_t first_nonfinite_row(DType dtype, const std::byte* data, int64_t rows, int64_t row_items, int64_t from) {
  const size_t width = static_cast<size_t>(row_items) * dtype_size(dtype);
  for (int64_t r = std::max<int64_t>(from, 0); r < rows; ++r) {
    const std::byte* p = data + static_cast<size_t>(r) * width;
    bool bad = false;
    switch (dtype) {
      case DType::f16:
        bad = any_nonfinite<uint16_t>(p, row_items, 0x7c00u);
        break;
      case DType::f32:
        bad = any_nonfinite<uint32_t>(p, row_items, 0x7f800000u);
        break;
      case DType::f64:
        bad = any_nonfinite<uint64_t>(p, row_items, 0x7ff0000000000000ull);
        break;
      default:
        return -1;
    }
    if (bad) {
      return r;
    }
  }
  return -1;
}

void append_nonfinite_rows(DType dtype, const std::byte* data, int64_t rows, int64_t row_items, int64_t base,
                           std::vector<int64_t>& out) {
  for (int64_t r = first_nonfinite_row(dtype, data, rows, row_items); r >= 0;
       r = first_nonfinite_row(dtype, data, rows, row_items, r + 1)) {
    out.push_back(base + r);
  }
}

std::vector<float> Array::row_as_float32(int64_t i) const {
  const int64_t n = shape_product(row_shape());
  std::vector<float> out(static_cast<size_t>(n));
  if (m_dtype == DType::f32) {
    std::memcpy(out.data(), row(i).data(), out.size() * sizeof(float));
    return out;
  }
  for (int64_t j = 0; j < n; ++j) {
    out[static_cast<size_t>(j)] = static_cast<float>(element_as_double(i * n + j));
  }
  return out;
}

Array Array::to_float32() const {
  Array out(DType::f32, m_shape);
  const int64_t n = size();
  float* dst = out.as<float>();
  for (int64_t j = 0; j < n; ++j) {
    dst[j] = static_cast<float>(element_as_double(j));
  }
  return out;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t float_to_half(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) {  // inf or nan
    return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));
  }
  if (exp >= 0x1f) {
    return static_cast<uint16_t>(sign | 0x7c00u);
  }
  if (exp <= 0) {
    if (exp < -10) {
      return static_cast<uint16_t>(sign);
    }
    mant |= 0x800000u;
    const uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t half_mant = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1u))) {
      ++half_mant;
    }
    return static_cast<uint16_t>(sign | half_mant);
  }
  uint32_t h = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) {
    ++h;  // may carry into the exponent, which is the right rounding
  }
  return static_cast<uint16_t>(h);
}

}  // namespace vstash
