// SPDX-License-Identifier: MIT
#include "backends/common/rowcodec.hpp"

#include <fmt/format.h>
#include <cmath>
#include <cstring>

#include "src/errors.hpp"

namespace vstash::backends {

// Layout: "VSA1" | u8 dtype | u8 ndim | ndim x i64 dims | raw data (native = little-endian).
// Fixed-width fields keep decoding trivial and let a reader validate sizes before copying.
namespace {
constexpr char k_magic[4] = {'V', 'S', 'A', '1'};
constexpr size_t k_max_ndim = 32;
}  // namespace

std::string encode_array(const Array& array) {
  std::string out;
  const auto ndim = static_cast<uint8_t>(array.shape().size());
  out.reserve(6 + ndim * 8 + array.nbytes());
  out.append(k_magic, 4);
  out.push_back(static_cast<char>(array.dtype()));
  out.push_back(static_cast<char>(ndim));
  for (int64_t d : array.shape()) {
    out.append(reinterpret_cast<const char*>(&d), sizeof d);
  }
  out.append(reinterpret_cast<const char*>(array.data()), array.nbytes());
  return out;
}

Array decode_array(std::string_view blob) {
  if (blob.size() < 6 || std::memcmp(blob.data(), k_magic, 4) != 0) {
    throw Error("corrupt array blob: bad magic");
  }
  const auto dtype_code = static_cast<uint8_t>(blob[4]);
  const auto ndim = static_cast<uint8_t>(blob[5]);
  if (dtype_code > static_cast<uint8_t>(DType::b1) || ndim > k_max_ndim || blob.size() < 6 + ndim * 8u) {
    throw Error("corrupt array blob: bad header");
  }
  Shape shape(ndim);
  if (ndim > 0) {  // a scalar's empty shape has a null data(): memcpy(nullptr, ..., 0) is UB
    std::memcpy(shape.data(), blob.data() + 6, ndim * 8u);
  }
  const auto dtype = static_cast<DType>(dtype_code);
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && count > INT64_MAX / d)) {
      throw Error("corrupt array blob: bad shape");
    }
    count *= d;
  }
  const size_t payload = blob.size() - 6 - ndim * 8u;
  if (static_cast<uint64_t>(count) * dtype_size(dtype) != payload) {
    throw Error(fmt::format("corrupt array blob: shape {} needs {} bytes, blob has {}", shape_to_string(shape),
                            static_cast<uint64_t>(count) * dtype_size(dtype), payload));
  }
  std::vector<std::byte> bytes(payload);
  if (payload > 0) {
    std::memcpy(bytes.data(), blob.data() + 6 + ndim * 8u, payload);
  }
  return Array(dtype, std::move(shape), std::move(bytes));
}

int64_t decode_row_index(const nlohmann::json& value, std::string_view what) {
  const double x = value.is_number() ? value.get<double>() : -1.0;
  if (!(x >= 0.0 && x <= 9007199254740992.0) || x != std::floor(x)) {
    throw Error(fmt::format("{}: row index {} is not a whole number in [0, 2^53]", what, value.dump()));
  }
  return static_cast<int64_t>(x);
}

}  // namespace vstash::backends
