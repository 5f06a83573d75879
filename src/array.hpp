// SPDX-License-Identifier: MIT
// An n-dimensional array with a dtype and a shape: what NPY and HDF5 files hold and what
// every backend stores. Data is always C order and native (little-endian) byte order; the
// file readers convert on the way in and the writers keep it that way on the way out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vstash {

enum class DType : uint8_t { f16, f32, f64, i8, i16, i32, i64, u8, u16, u32, u64, b1 };

using Shape = std::vector<int64_t>;

size_t dtype_size(DType t);
// numpy's name: "float32", "int8", "bool", ...
std::string_view dtype_name(DType t);
// Parses a numpy name ("float32", "f4", "<f4" without the byte order is fine); throws UsageError.
DType parse_dtype_name(std::string_view name);
bool dtype_is_float(DType t);

int64_t shape_product(std::span<const int64_t> shape);
std::string shape_to_string(std::span<const int64_t> shape);  // "(3, 4)"

// The first of `rows` rows of row_items elements each (C order, native byte order, starting at
// data) holding a NaN or Inf, from row `from` on; -1 if none (or not a float dtype). Reads
// the exponent bits directly: every ingest's pre-write check runs through here.
int64_t first_nonfinite_row(DType dtype, const std::byte* data, int64_t rows, int64_t row_items, int64_t from = 0);
// Appends base + r to out for every such row r, in order.
void append_nonfinite_rows(DType dtype, const std::byte* data, int64_t rows, int64_t row_items, int64_t base,
                           std::vector<int64_t>& out);

class Array {
 public:
  Array() = default;
  Array(DType dtype, Shape shape);                                // zero-filled
  Array(DType dtype, Shape shape, std::vector<std::byte> bytes);  // bytes.size() must match
  // A read-only view of bytes someone else holds (rows of a mapped file), kept alive by
  // `owner`: an ingest hands a file's rows to the backends without copying them. Reading is
  // free; the first mutable access copies the bytes into the array's own storage.
  static Array view(DType dtype, Shape shape, std::span<const std::byte> bytes, std::shared_ptr<const void> owner);

  DType dtype() const { return m_dtype; }
  const Shape& shape() const { return m_shape; }
  int64_t ndim() const { return static_cast<int64_t>(m_shape.size()); }
  int64_t size() const { return shape_product(m_shape); }  // number of elements
  size_t nbytes() const { return m_view != nullptr ? m_view_size : m_bytes.size(); }
  bool is_view() const { return m_view != nullptr; }

  // Rows are slices along the first axis. A 0-d array has one row.
  int64_t rows() const { return m_shape.empty() ? 1 : m_shape[0]; }
  Shape row_shape() const;  // shape without the first axis
  size_t row_bytes() const;

  // The mutable accessors turn a view into an owned copy first.
  std::byte* data() { return own().data(); }
  const std::byte* data() const { return m_view != nullptr ? m_view : m_bytes.data(); }
  std::span<const std::byte> bytes() const { return {data(), nbytes()}; }
  std::span<const std::byte> row(int64_t i) const;
  std::span<std::byte> row(int64_t i);
  std::vector<std::byte>& storage() { return own(); }

  template <class T>
  const T* as() const {
    return reinterpret_cast<const T*>(data());
  }
  template <class T>
  T* as() {
    return reinterpret_cast<T*>(data());
  }

  // Rows [begin, begin+count) as a new array.
  Array slice_rows(int64_t begin, int64_t count) const;
  // Appends the rows of other (same dtype and row shape, else throws UsageError).
  void append_rows(const Array& other);
  // Element i converted to double (any dtype).
  double element_as_double(int64_t i) const;
  // Row i converted to float32 values (the vector a backend indexes).
  std::vector<float> row_as_float32(int64_t i) const;
  // The first row holding a NaN or Inf, from row `from` on; -1 if none (or not a float dtype).
  int64_t first_nonfinite_row(int64_t from = 0) const {
    return vstash::first_nonfinite_row(m_dtype, data(), rows(), shape_product(row_shape()), from);
  }
  void append_nonfinite_rows(int64_t base, std::vector<int64_t>& out) const {
    vstash::append_nonfinite_rows(m_dtype, data(), rows(), shape_product(row_shape()), base, out);
  }
  // Whole array converted to float32, same shape.
  Array to_float32() const;
  // Bit-for-bit equality of dtype, shape and bytes (a view equals its copy).
  bool operator==(const Array& other) const;

 private:
  std::vector<std::byte>& own();  // a view's bytes copied into m_bytes; the view dropped

  DType m_dtype = DType::f32;
  Shape m_shape;
  std::vector<std::byte> m_bytes;
  // A view: m_view_size bytes at m_view, alive while m_owner is (m_bytes is then empty).
  const std::byte* m_view = nullptr;
  size_t m_view_size = 0;
  std::shared_ptr<const void> m_owner;
};

// IEEE half <-> float.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

}  // namespace vstash
