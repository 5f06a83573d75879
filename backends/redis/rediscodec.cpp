// SPDX-License-Identifier: MIT
// The bytes of the chunked layout: the stored spec, a row's record and a chunk's records value.
#include <fmt/format.h>
#include <cstring>

#include "backends/common/catalog.hpp"
#include "backends/redis/redisrows.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

std::string stored_spec_text(const DatasetSpec& spec) {
  json j = catalog::spec_to_json(spec);
  if (!spec.label_dtype) {
    j.erase("label_dtype");
    j.erase("label_shape");
  }
  return j.dump();
}

std::string encode_record(std::string_view id, const json& metadata) {
  const auto n = static_cast<uint32_t>(id.size());
  std::string out(reinterpret_cast<const char*>(&n), sizeof n);
  out.append(id);
  if (!metadata.is_null()) {
    // MessagePack, not JSON text: it keeps arbitrary bytes in strings without a UTF-8 check.
    const auto packed = json::to_msgpack(metadata);
    out.append(reinterpret_cast<const char*>(packed.data()), packed.size());
  }
  return out;
}

std::pair<std::string, json> decode_record(std::string_view r) {
  uint32_t n = 0;
  if (r.size() < sizeof n) {
    throw Error("redis: corrupt row record (too short)");
  }
  std::memcpy(&n, r.data(), sizeof n);
  if (r.size() < sizeof n + n) {
    throw Error("redis: corrupt row record (id overruns the record)");
  }
  std::string id(r.substr(sizeof n, n));
  const auto meta = r.substr(sizeof n + n);
  return {std::move(id), meta.empty() ? json() : json::from_msgpack(meta.begin(), meta.end())};
}

std::string encode_chunk_records(const std::vector<std::pair<int64_t, std::string_view>>& records) {
  size_t size = k_records_data;
  for (const auto& [slot, record] : records) {
    size += record.size();
  }
  std::string out(k_records_data, '\0');
  out.reserve(size);
  const auto count = static_cast<uint16_t>(records.size());
  out[0] = 'T';
  out[1] = static_cast<char>(count & 0xff);
  out[2] = static_cast<char>(count >> 8);
  // records come in slot order; a slot without one repeats the previous end
  size_t next = 0;
  uint32_t end = 0;
  for (int64_t s = 0; s < k_chunk_rows; ++s) {
    if (next < records.size() && records[next].first == s) {
      out.append(records[next].second);
      end += static_cast<uint32_t>(records[next].second.size());
      ++next;
    }
    std::memcpy(out.data() + k_records_table + 4 * static_cast<size_t>(s), &end, sizeof end);
  }
  return out;
}

ChunkRecords decode_chunk_records(std::string_view blob) {
  if (blob.size() < 3 || (blob[0] != 'R' && blob[0] != 'T')) {
    throw Error("redis: corrupt chunk records (bad header)");
  }
  const auto count = static_cast<size_t>(static_cast<unsigned char>(blob[1])) |
                     static_cast<size_t>(static_cast<unsigned char>(blob[2])) << 8;
  ChunkRecords out;
  if (blob[0] == 'T') {
    if (blob.size() < k_records_data) {
      throw Error("redis: corrupt chunk records (truncated)");
    }
    uint32_t begin = 0;
    for (int64_t s = 0; s < k_chunk_rows; ++s) {
      const uint32_t end = load_u32(blob.data() + k_records_table + 4 * static_cast<size_t>(s));
      if (end < begin || k_records_data + end > blob.size()) {
        throw Error("redis: corrupt chunk records (record overruns the value)");
      }
      if (end > begin) {
        out.emplace(s, std::string(blob.substr(k_records_data + begin, end - begin)));
      }
      begin = end;
    }
    if (out.size() != count || k_records_data + begin != blob.size()) {
      throw Error("redis: corrupt chunk records (count does not match)");
    }
    return out;
  }
  size_t at = 3;
  for (size_t i = 0; i < count; ++i) {
    uint32_t n = 0;
    if (blob.size() < at + 5) {
      throw Error("redis: corrupt chunk records (truncated)");
    }
    const auto slot = static_cast<int64_t>(static_cast<unsigned char>(blob[at]));
    std::memcpy(&n, blob.data() + at + 1, sizeof n);
    at += 5;
    if (blob.size() < at + n) {
      throw Error("redis: corrupt chunk records (record overruns the value)");
    }
    out.emplace(slot, std::string(blob.substr(at, n)));
    at += n;
  }
  return out;
}

std::string encode_chunk_records(const ChunkRecords& records) {
  std::vector<std::pair<int64_t, std::string_view>> list(records.begin(), records.end());
  return encode_chunk_records(list);
}

}  // namespace vstash::backends::redis
