// SPDX-License-Identifier: MIT
#include "python/convert.hpp"

#include <fmt/format.h>
#include <memory>

#include "src/errors.hpp"

namespace vstash::python {

namespace {

constexpr int k_max_json_depth = 64;

nlohmann::json to_json_at(py::handle obj, const std::string& what, int depth) {
  if (depth > k_max_json_depth) {
    throw UsageError(fmt::format("{}: nested deeper than {} levels (the limit)", what, k_max_json_depth));
  }
  if (obj.is_none()) {
    return nullptr;
  }
  if (py::isinstance<py::bool_>(obj)) {
    return obj.cast<bool>();
  }
  if (py::isinstance<py::int_>(obj)) {
    try {
      return obj.cast<int64_t>();
    } catch (const py::cast_error&) {
      try {
        return obj.cast<uint64_t>();
      } catch (const py::cast_error&) {
        throw UsageError(fmt::format("{}: integer {} is out of range", what, py::str(obj).cast<std::string>()));
      }
    }
  }
  if (py::isinstance<py::float_>(obj)) {
    return obj.cast<double>();
  }
  if (py::isinstance<py::str>(obj)) {
    return obj.cast<std::string>();
  }
  if (py::isinstance<py::dict>(obj)) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : obj.cast<py::dict>()) {
      if (!py::isinstance<py::str>(k)) {
        throw UsageError(
            fmt::format("{}: keys must be strings, got {}", what, py::repr(k).cast<std::string>().substr(0, 60)));
      }
      const auto key = k.cast<std::string>();
      out[key] = to_json_at(v, what, depth + 1);
    }
    return out;
  }
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : obj) {
      out.push_back(to_json_at(v, what, depth + 1));
    }
    return out;
  }
  // numpy scalars and arrays: their Python equivalents.
  if (py::hasattr(obj, "dtype") && py::hasattr(obj, "tolist")) {
    return to_json_at(obj.attr("tolist")(), what, depth);
  }
  throw UsageError(fmt::format("{}: a value of type {} is not JSON", what,
                               py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>()));
}

}  // namespace

DType dtype_of(const py::dtype& dt, const std::string& what) {
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  struct Entry {
    char kind;
    py::ssize_t size;
    DType dtype;
  };
  static constexpr Entry k_table[] = {
      {'f', 2, DType::f16}, {'f', 4, DType::f32}, {'f', 8, DType::f64}, {'i', 1, DType::i8},
      {'i', 2, DType::i16}, {'i', 4, DType::i32}, {'i', 8, DType::i64}, {'u', 1, DType::u8},
      {'u', 2, DType::u16}, {'u', 4, DType::u32}, {'u', 8, DType::u64}, {'b', 1, DType::b1},
  };
  for (const auto& e : k_table) {
    if (e.kind == kind && e.size == size) {
      return e.dtype;
    }
  }
  throw UsageError(fmt::format("{}: dtype {} is not supported (float16/32/64, int8-64, uint8-64 or bool)", what,
                               py::str(py::handle(dt)).cast<std::string>()));
}

py::dtype numpy_dtype(DType t) { return py::dtype::from_args(py::str(std::string(dtype_name(t)))); }

py::array contiguous(py::handle obj, const std::string& what) {
  if (obj.is_none()) {
    throw UsageError(fmt::format("{}: expected an array, got None", what));
  }
  py::module_ np = py::module_::import("numpy");
  py::array arr = py::isinstance<py::array>(obj) ? py::reinterpret_borrow<py::array>(obj) : np.attr("asarray")(obj);
  dtype_of(arr.dtype(), what);
  const auto order = arr.dtype().attr("byteorder").cast<std::string>();
  if (order == ">") {
    arr = arr.attr("astype")(arr.dtype().attr("newbyteorder")("="));
  }
  if (!(arr.flags() & py::array::c_style)) {
    arr = np.attr("ascontiguousarray")(arr);
  }
  return arr;
}

Array array_view(const py::array& arr, const std::string& what) {
  Shape shape(arr.shape(), arr.shape() + arr.ndim());
  const auto* bytes = static_cast<const std::byte*>(arr.data());
  // The caller keeps arr alive for as long as the view is used (see convert.hpp).
  std::shared_ptr<const void> owner(bytes, [](const void*) {});
  return Array::view(dtype_of(arr.dtype(), what), std::move(shape), {bytes, static_cast<size_t>(arr.nbytes())},
                     std::move(owner));
}

py::array to_numpy(Array&& a) {
  auto holder = std::make_unique<Array>(std::move(a));
  const Shape shape = holder->shape();
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t stride = static_cast<py::ssize_t>(dtype_size(holder->dtype()));
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= static_cast<py::ssize_t>(shape[i]);
  }
  std::byte* data = holder->data();  // owned (a view is copied here, rarely)
  const py::dtype dt = numpy_dtype(holder->dtype());
  py::capsule base(holder.get(), [](void* p) { delete static_cast<Array*>(p); });
  holder.release();
  return py::array(dt, std::vector<py::ssize_t>(shape.begin(), shape.end()), strides, data, base);
}

nlohmann::json to_json(py::handle obj, const std::string& what) { return to_json_at(obj, what, 0); }

nlohmann::json to_json_object(py::handle obj, const std::string& what) {
  if (obj.is_none()) {
    return nlohmann::json::object();
  }
  if (!py::isinstance<py::dict>(obj)) {
    throw UsageError(fmt::format("{}: expected a dict, got {}", what,
                                 py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>()));
  }
  return to_json(obj, what);
}

py::object from_json(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return py::none();
    case nlohmann::json::value_t::boolean:
      return py::bool_(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return py::int_(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return py::int_(j.get<uint64_t>());
    case nlohmann::json::value_t::number_float:
      return py::float_(j.get<double>());
    case nlohmann::json::value_t::string:
      return py::str(j.get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      py::list out;
      for (const auto& v : j) {
        out.append(from_json(v));
      }
      return out;
    }
    case nlohmann::json::value_t::object: {
      py::dict out;
      for (const auto& [k, v] : j.items()) {
        out[py::str(k)] = from_json(v);
      }
      return out;
    }
    default:
      return py::none();
  }
}

}  // namespace vstash::python
