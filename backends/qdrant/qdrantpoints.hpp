// SPDX-License-Identifier: MIT
// Rows as Qdrant points: point ids, payload layout, JSON bodies and decoding.
//
// Point ids. Qdrant accepts only unsigned integers and UUIDs, vstash ids are any string:
//   - a canonical decimal ("0", "42", no sign, no leading zero) that fits uint64 becomes
//     that integer point id;
//   - a UUID in any textual form (hyphenated, simple, braced, urn:uuid:, any case) becomes
//     that UUID, so UUIDs are compared case-insensitively: "ABC..." and "abc..." name one row;
//   - every other string becomes uuid_v5(k_id_namespace, id).
// The id as the user wrote it is kept in the payload (`_id`) and is what reads return.
//
// Payload of a row point:
//   _id       the original id (string, keyword index)
//   _idx      the row index (integer index; order and positions come from it)
//   metadata  the user's metadata object (absent when empty); filters address
//             "metadata.<key>", so user keys never collide with the reserved "_" keys
//   label     the label: a number for scalar labels, a flat array otherwise (exact for
//             every dtype: integers are written as integers)
//   _keys     the metadata keys whose value is not null (so $exists is a server-side match)
//   _num      {key: number} for the metadata keys holding one number (so $gt..$lte are a
//             server-side range: Qdrant's range on "metadata.<key>" also matches an element
//             of an array, vstash's only a numeric field); _keys and _num are written only
//             for non-empty metadata, and only datasets whose catalog says "filter_aids" have
//             them on every row (qdrantfilter.hpp)
//   _data     base64 rowcodec blob of the exact sample, written when the vector alone cannot
//             give the sample back: dtype other than float32, or metric cosine (Qdrant
//             normalises cosine vectors on insert)
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::backends::qdrant {

// The fixed namespace of the point ids derived from arbitrary strings. Never change it: it
// would orphan every stored non-numeric, non-UUID id. (= uuid5(NAMESPACE_URL,
// "vstash:qdrant:point-id"))
inline constexpr std::string_view k_id_namespace = "ddc95e9b-59a8-50d1-9b69-beb0ef59cb6e";

// The point id of a user id, as JSON (number or UUID string).
json point_id(const std::string& id);
// A stable text key for a point id as returned by Qdrant (for matching replies to requests).
std::string point_key(const json& point_id);
// The distinct point ids of user ids, in first-seen order.
std::vector<json> distinct_point_ids(const std::vector<std::string>& ids);

std::string distance_name(Metric metric);  // "Cosine", "Euclid", "Dot"
// The payload keys _keys and _num of a row's metadata (an object; empty for no metadata).
json filter_aids(const json& metadata);
// True when a row point also carries its exact sample in `_data`.
bool needs_data_blob(const DatasetSpec& spec);

// The list-form point objects of the rows, one JSON text each (no separators).
std::vector<std::string> encode_points(const DatasetSpec& spec, const RowBatch& batch,
                                       const std::vector<int64_t>& indices);
// The same for rows [begin, end) only, into out[begin, end) (out has batch.size() entries), so
// that several threads can encode one batch.
void encode_points_range(const DatasetSpec& spec, const RowBatch& batch, const std::vector<int64_t>& indices,
                         size_t begin, size_t end, std::vector<std::string>& out);
// Upsert bodies {"points":[...]} of at most max_points points and max_bytes bytes each.
std::vector<std::string> pack_points(const std::vector<std::string>& points, size_t max_points, size_t max_bytes);

// Rows from Qdrant Records/ScoredPoints, in the order given. Each must carry a payload with
// _id and _idx (and _data or a vector for the sample when with_samples).
RowBatch decode_records(const DatasetSpec& spec, const std::vector<const json*>& records, bool with_samples);
// The float32 sample of a record (from _data when present, else its vector).
std::vector<float> record_values(const DatasetSpec& spec, const json& record);

}  // namespace vstash::backends::qdrant
