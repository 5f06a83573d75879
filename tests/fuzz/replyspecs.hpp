// SPDX-License-Identifier: MIT
// The dataset a fuzzed store reply is decoded against, chosen by the input's first byte: the
// reply decoders behave differently per dtype, row shape, labels and metric.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::fuzz {

using backends::DatasetSpec;
using backends::json;
using backends::Metric;

inline const DatasetSpec& reply_spec(uint8_t selector) {
  static const std::vector<DatasetSpec> specs = [] {
    std::vector<DatasetSpec> s(4);
    s[0] = {"vectors", DType::f32, {3}, std::nullopt, {}, Metric::dot, json::object()};
    s[1] = {"mnist", DType::f32, {4}, DType::i64, {}, Metric::cosine, json::object()};
    s[2] = {"images", DType::u8, {2, 2}, DType::f32, {3}, Metric::euclidean, json::object()};
    s[3] = {"halves", DType::f16, {2}, DType::b1, {}, Metric::euclidean, json::object()};
    return s;
  }();
  return specs[selector % specs.size()];
}

}  // namespace vstash::fuzz
