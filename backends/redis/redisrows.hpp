// SPDX-License-Identifier: MIT
// Internal to the redis backend: the chunked row layout (documented in redisbackend.cpp)
// and the pipelined reads and MULTI/EXEC writes over it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../backend.hpp"
#include "redisconnection.hpp"
#include "redisstore.hpp"

namespace vstash::backends::redis {

constexpr int64_t k_chunk_rows = 256;

struct DatasetKeys {
  DatasetKeys(const StoreConfig& cfg, const std::string& dataset);
  std::string name;
  std::string base;  // P ds:{NAME}:
  std::string manifest() const { return base + "manifest"; }
  std::string ids(const std::string& inc) const { return base + inc + ":ids"; }
  std::string rows(const std::string& inc, int64_t n) const { return base + inc + ":rows:" + std::to_string(n); }
  std::string chunk(const std::string& inc, int64_t n) const { return base + inc + ":chunk:" + std::to_string(n); }
  std::string labels(const std::string& inc, int64_t n) const { return base + inc + ":labels:" + std::to_string(n); }
};

// What the snapshot script saw, atomically: the manifest and every chunk's live count.
struct Snapshot {
  DatasetKeys keys;
  DatasetSpec spec;
  std::string inc;
  int64_t next_index = 0;
  int64_t nchunks = 0;
  int64_t gen = 0;
  int64_t rows = 0;
  std::vector<int64_t> live;  // live rows per chunk
  bool intact = true;         // false when a rows hash or the ids hash has vanished
  size_t row_bytes = 0;
  size_t label_bytes = 0;
};

struct ChunkData {
  int64_t n = 0;
  std::map<int64_t, std::string> records;  // slot -> record (empty when only slots were read)
  std::string samples;
};

json spec_to_json(const DatasetSpec& spec);
DatasetSpec spec_from_json(const std::string& name, const json& j);
// A row's record in its rows hash: u32 id length, id bytes, metadata as MessagePack
// (nothing for null).
std::string encode_record(std::string_view id, const json& metadata);
std::pair<std::string, json> decode_record(std::string_view record);

class RowStore {
 public:
  RowStore(Connection& conn, const StoreConfig& cfg) : m_conn(conn), m_cfg(cfg) {}

  void append_snapshot(const DatasetKeys& keys);
  // nullopt when the manifest does not exist.
  std::optional<Snapshot> parse_snapshot(const std::string& dataset, const redisReply& reply) const;
  // An intact snapshot, or NotFoundError "expired or not found".
  Snapshot require(const std::string& dataset);
  [[noreturn]] void throw_expired(const std::string& dataset) const;
  // Queues EXPIRE for every key of the dataset (chunks below nchunks).
  void append_expire_all(const DatasetKeys& keys, const Snapshot& snap, int64_t nchunks = -1);

  // Mutations return false (or nullopt) when a concurrent write fired the WATCH: retry.
  bool write(const std::string& dataset, const RowBatch& batch);
  bool update(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
              const std::optional<json>& metadata);
  using Selector = std::function<std::vector<std::optional<int64_t>>(const Snapshot&)>;
  std::optional<int64_t> remove(const std::string& dataset, const Selector& select);

  // Reads: nullopt when gen moved during the read (retry with a new snapshot).
  std::vector<std::optional<int64_t>> lookup_ids(const Snapshot& snap, const std::vector<std::string>& ids);
  std::optional<RowBatch> read_positions(const Snapshot& snap, const std::vector<int64_t>& positions);
  // The live rows at these indices, in the order given; values=false skips samples/labels.
  std::optional<RowBatch> load(const Snapshot& snap, const std::vector<int64_t>& indices, bool values);
  // Chunks [first, last): their live slots (and records) and, if asked, the sample blob.
  std::vector<ChunkData> read_chunks(const Snapshot& snap, int64_t first, int64_t last, bool records, bool samples);
  std::vector<int64_t> matching(const Snapshot& snap, const Filter& filter);
  bool gen_unchanged(const Snapshot& snap);
  void row_as_float(const Snapshot& snap, const std::string& samples, int64_t slot, std::vector<float>& out) const;

 private:
  Connection& m_conn;
  const StoreConfig& m_cfg;
};

}  // namespace vstash::backends::redis
