// SPDX-License-Identifier: MIT
// Layout 3's live counts, and migrating a layout 2 dataset to layout 3.
#include <fmt/format.h>

#include "backends/redis/redisrows.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

void DatasetRows::append_live(const DatasetKeys& k, const Snapshot& snap, const std::map<int64_t, int64_t>& counts) {
  for (auto it = counts.begin(); it != counts.end();) {
    const int64_t first = it->first;
    std::string bytes;
    for (int64_t c = first; it != counts.end() && it->first == c; ++it, ++c) {
      bytes.push_back(static_cast<char>(it->second & 0xff));
      bytes.push_back(static_cast<char>(it->second >> 8));
    }
    m_conn.append({"SETRANGE", k.live(snap.inc), std::to_string(2 * first), bytes});
  }
}

bool DatasetRows::migrate_layout(const Snapshot& snap) {
  const DatasetKeys& k = snap.keys;
  std::map<int64_t, std::string> values;
  for (int64_t first = 0; first < snap.nchunks; first += 64) {
    const int64_t last = std::min(snap.nchunks, first + 64);
    for (int64_t c = first; c < last; ++c) {
      m_conn.append({"GET", k.rows(snap.inc, c)});
    }
    auto replies = m_conn.flush();
    for (int64_t c = first; c < last; ++c) {
      const auto& reply = *replies[static_cast<size_t>(c - first)];
      if (is_nil(reply)) {
        throw_expired(k.name);
      }
      values[c] = encode_chunk_records(decode_chunk_records(as_view(reply)));
    }
  }
  std::map<int64_t, int64_t> counts;
  for (int64_t c = 0; c < snap.nchunks; ++c) {
    counts[c] = snap.live[static_cast<size_t>(c)];
  }
  m_conn.append({"MULTI"});
  for (const auto& [c, value] : values) {
    m_conn.append({"SET", k.rows(snap.inc, c), value});
  }
  m_conn.append({"SET", k.live(snap.inc), ""});
  append_live(k, snap, counts);
  m_conn.append({"HSET", k.manifest(), "rows", std::to_string(snap.rows), "layout", k_layout});
  m_conn.append({"HINCRBY", k.manifest(), "gen", "1"});
  append_expire_all(k, snap);
  m_conn.append({"EXEC"});
  const bool ok = exec_ok(m_conn.flush());
  if (ok) {
    commit_turn(m_conn.location(), k.manifest()).advanced(snap.inc, snap.gen);
  }
  return ok;
}

}  // namespace vstash::backends::redis
