// SPDX-License-Identifier: MIT
// The lazy ids index: where an id lives (the ids hash plus the records past ids_from), and
// the hash fields a mutation adds.
#include <fmt/format.h>
#include <algorithm>
#include <unordered_map>

#include "backends/redis/redisrows.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

std::vector<std::optional<int64_t>> DatasetRows::lookup_ids(const Snapshot& snap, const std::vector<std::string>& ids,
                                                            IdsCatchUp* catch_up) {
  const std::string key = snap.keys.ids(snap.inc);
  for (size_t begin = 0; begin < ids.size(); begin += k_fields_per_command) {
    std::vector<std::string_view> args = {"HMGET", key};
    for (size_t i = begin; i < std::min(ids.size(), begin + k_fields_per_command); ++i) {
      args.push_back(ids[i]);
    }
    m_conn.append(args);
  }
  // The chunks whose ids the hash may lack are read in the same round trip.
  const int64_t from = std::min(snap.ids_from, snap.nchunks);
  for (int64_t c = from; c < snap.nchunks; ++c) {
    m_conn.append({"GET", snap.keys.rows(snap.inc, c)});
  }
  const auto replies = m_conn.flush();
  std::vector<std::optional<int64_t>> out;
  out.reserve(ids.size());
  const size_t hash_replies = (ids.size() + k_fields_per_command - 1) / k_fields_per_command;
  for (size_t r = 0; r < hash_replies; ++r) {
    for (size_t i = 0; i < array_size(*replies[r]); ++i) {
      const auto& e = element(*replies[r], i);
      out.push_back(is_nil(e) ? std::nullopt : std::optional<int64_t>(as_int(e)));
    }
  }
  if (from == snap.nchunks) {
    return out;
  }
  IdsCatchUp read;
  read.upto = snap.nchunks;
  for (int64_t c = from; c < snap.nchunks; ++c) {
    const auto& reply = *replies[hash_replies + static_cast<size_t>(c - from)];
    if (is_nil(reply)) {
      stale_or_expired(snap);
    }
    for (const auto& [slot, record] : decode_chunk_records(as_view(reply))) {
      read.entries.emplace_back(decode_record(record).first, c * k_chunk_rows + slot);
    }
  }
  std::unordered_map<std::string_view, int64_t> where;
  where.reserve(read.entries.size());
  for (const auto& [id, index] : read.entries) {
    where.emplace(id, index);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!out[i]) {
      if (const auto it = where.find(ids[i]); it != where.end()) {
        out[i] = it->second;
      }
    }
  }
  if (catch_up != nullptr) {
    *catch_up = std::move(read);
  }
  return out;
}

void DatasetRows::append_index_fields(const DatasetKeys& k, const Snapshot& snap,
                                      const std::vector<std::pair<std::string_view, int64_t>>& fields) {
  const std::string ids_key = k.ids(snap.inc);
  std::vector<std::string> index_text;
  for (size_t begin = 0; begin < fields.size(); begin += k_fields_per_command) {
    const size_t end = std::min(fields.size(), begin + k_fields_per_command);
    index_text.assign(end - begin, {});  // views below point into it until the append
    std::vector<std::string_view> args = {"HSET", ids_key};
    for (size_t i = begin; i < end; ++i) {
      index_text[i - begin] = std::to_string(fields[i].second);
      args.push_back(fields[i].first);
      args.push_back(index_text[i - begin]);
    }
    m_conn.append(args);
  }
}

void DatasetRows::append_ids_catch_up(const DatasetKeys& k, const Snapshot& snap, const IdsCatchUp& catch_up) {
  if (catch_up.upto < 0) {
    return;
  }
  append_index_fields(k, snap, {catch_up.entries.begin(), catch_up.entries.end()});
  m_conn.append({"HSET", k.manifest(), "ids_from", std::to_string(catch_up.upto)});
}

bool DatasetRows::index_ids(const std::string& dataset) {
  const DatasetKeys k(m_cfg, dataset);
  Watched watched(*this, k);
  Snapshot& snap = watched.snap();
  if (snap.ids_from >= snap.nchunks) {
    return true;  // Unwatch clears the WATCH
  }
  IdsCatchUp catch_up;
  lookup_ids(snap, {}, &catch_up);
  m_conn.append({"MULTI"});
  watched.disarm();
  append_ids_catch_up(k, snap, catch_up);
  m_conn.append({"EXEC"});
  // gen stays: no row changed, so readers' snapshots and this process's KnownIds hold.
  return exec_ok(m_conn.flush());
}

}  // namespace vstash::backends::redis
