// SPDX-License-Identifier: MIT
// numpy arrays and Python objects <-> vstash::Array and JSON, for the Python module.
// Arrays cross without copying when their layout allows: a C-contiguous, native-order input
// is viewed in place; a returned Array is moved into the numpy array's base (a capsule).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <nlohmann/json.hpp>
#include <string>

#include "src/array.hpp"

namespace vstash::python {

namespace py = pybind11;

// numpy dtype <-> DType; an unsupported dtype (object, string, complex) is UsageError
// naming `what`.
DType dtype_of(const py::dtype& dt, const std::string& what);
py::dtype numpy_dtype(DType t);
// obj as a C-contiguous, native-byte-order numpy array: obj itself when it already is one,
// else a converted copy (lists, Fortran order, big-endian).
py::array contiguous(py::handle obj, const std::string& what);
// The bytes of a contiguous() array as an Array view. Valid only while arr is alive: use it
// within the call that holds arr.
Array array_view(const py::array& arr, const std::string& what);
// The array's ownership moves into the returned numpy array (no copy).
py::array to_numpy(Array&& a);

// JSON from Python values (dict with str keys, list, tuple, str, int, float, bool, None,
// numpy scalars and arrays), at most 64 levels deep; anything else is UsageError naming `what`.
nlohmann::json to_json(py::handle obj, const std::string& what);
// A JSON object from a dict (None: an empty object).
nlohmann::json to_json_object(py::handle obj, const std::string& what);
py::object from_json(const nlohmann::json& j);

}  // namespace vstash::python
