// SPDX-License-Identifier: MIT
// The cache tier's binary forms (backends/redis/cachedbackend.cpp): whole batches, single
// rows, query hits, checkpoints and dataset facts, length-prefixed so that ids and metadata
// may hold any bytes. Decoders throw vstash::Error on a truncated or inconsistent value (the
// caller treats it as a miss).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::backends::cachecodec {

std::string encode_batch(const RowBatch& batch);
RowBatch decode_batch(std::string_view value);

// Row i of batch, self-describing (dtype and row shape of its sample and label).
std::string encode_row(const RowBatch& batch, size_t i);
// The rows, in order, as one batch; they must agree in dtype and shape.
RowBatch decode_rows(const std::vector<std::string_view>& rows);

std::string encode_hits(const std::vector<QueryHit>& hits);
std::vector<QueryHit> decode_hits(std::string_view value);

std::string encode_checkpoint(const Checkpoint& checkpoint);
Checkpoint decode_checkpoint(std::string_view value);

std::string encode_info(const DatasetInfo& info);
DatasetInfo decode_info(std::string_view value);

}  // namespace vstash::backends::cachecodec
