// SPDX-License-Identifier: MIT
// A streamed batch's samples and labels in one round trip (PgvectorBackend::read_samples'
// fast path, pgreads.cpp): one autocommit statement reads the rows and, in the same snapshot,
// checks that the catalog still describes the dataset the caller read before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/pgvector/pgconnection.hpp"
#include "backends/pgvector/pgdatasets.hpp"
#include "backends/storetypes.hpp"

namespace vstash::backends::pgvector {

// pgvector's binary vector (int16 dimensions, int16 unused, big-endian float4 values) into
// dst, which holds dim floats. False when the value is not a vector of dim dimensions.
bool decode_vector_into(std::string_view wire, float* dst, size_t dim);

// The data and labels of the rows at `positions` (in that order; ids are empty strings,
// indices the positions, no metadata), read by one statement outside any transaction that
// returns them only if the catalog row of `known.spec.name` in `catalog_table` still names
// known.table with the same dtype and shapes, is dense (live_rows = next_index: a position
// is an index) and covers every position. nullopt when it does not, or when the rows table
// is gone (or positions is empty): the caller then takes the transactional path, which
// reports those cases. The statement is prepared once per connection. Throws Error for a
// stored value of the wrong size, ServerError for other server errors.
std::optional<RowBatch> read_samples_once(Session& s, const std::string& catalog_table, const CatalogEntry& known,
                                          const std::vector<int64_t>& positions);

}  // namespace vstash::backends::pgvector
