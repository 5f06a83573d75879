// SPDX-License-Identifier: MIT
// A self-describing binary form of an Array (magic "VSA1", dtype, shape, raw little-endian
// data) for stores that keep exact samples, labels and checkpoint arrays as blobs (Redis
// values, Qdrant payloads and Pinecone metadata as base64).
#pragma once

#include <string>
#include <string_view>

#include "backends/backend.hpp"

namespace vstash::backends {

std::string encode_array(const Array& array);
// Throws vstash::Error("corrupt array blob: ...") on bad input.
Array decode_array(std::string_view blob);

// A row index that a store kept as a JSON number (Qdrant payloads, Pinecone metadata, where
// it travels as a float64): a whole number in [0, 2^53]. Anything else is a record vstash did
// not write, and converting it would be undefined; throws Error naming `what` (the record).
int64_t decode_row_index(const nlohmann::json& value, std::string_view what);

}  // namespace vstash::backends
