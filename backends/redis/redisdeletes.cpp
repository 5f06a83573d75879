// SPDX-License-Identifier: MIT
// Deleting rows (by id or by filter): their slots and records cleared, counts and ids hash
// updated, in one MULTI/EXEC.
#include <fmt/format.h>
#include <set>

#include "backends/redis/redisrows.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

namespace {

// The records of the chunks holding these indices. Plain reads, not load(): its EXEC would
// end the WATCH this delete relies on.
std::map<int64_t, ChunkRecords> victim_chunks(Connection& conn, const DatasetRows& rows, const Snapshot& snap,
                                              const std::vector<int64_t>& indices) {
  std::map<int64_t, ChunkRecords> chunks;
  for (const auto idx : indices) {
    chunks.emplace(chunk_of(idx), ChunkRecords());
  }
  for (const auto& [c, unused] : chunks) {
    conn.append({"GET", snap.keys.rows(snap.inc, c)});
  }
  if (chunks.empty()) {
    return chunks;
  }
  auto replies = conn.flush();
  size_t r = 0;
  for (auto& [c, records] : chunks) {
    const auto& reply = *replies[r++];
    if (is_nil(reply)) {
      rows.stale_or_expired(snap);
    }
    records = decode_chunk_records(as_view(reply));
  }
  return chunks;
}

// HDELs of these ids, k_fields_per_command per command.
void append_hdel(Connection& conn, const std::string& ids_key, const std::vector<std::string>& ids) {
  for (size_t begin = 0; begin < ids.size(); begin += k_fields_per_command) {
    std::vector<std::string_view> args = {"HDEL", ids_key};
    for (size_t i = begin; i < std::min(ids.size(), begin + k_fields_per_command); ++i) {
      args.push_back(ids[i]);
    }
    conn.append(args);
  }
}

}  // namespace

std::optional<int64_t> DatasetRows::remove(const std::string& dataset, const Selector& select) {
  const DatasetKeys k(m_cfg, dataset);
  Watched watched(*this, k);
  Snapshot& snap = watched.snap();
  if (snap.layout != k_layout) {
    migrate_layout(snap);
    return std::nullopt;  // again, in layout 3
  }
  std::set<int64_t> victims;
  IdsCatchUp catch_up;
  for (const auto& i : select(snap, catch_up)) {
    if (i) {
      victims.insert(*i);
    }
  }
  const std::vector<int64_t> indices(victims.begin(), victims.end());
  std::map<int64_t, ChunkRecords> chunks = victim_chunks(m_conn, *this, snap, indices);
  std::vector<std::string> ids;
  for (const auto idx : indices) {
    auto& records = chunks.at(chunk_of(idx));
    const auto rec = records.find(slot_of(idx));
    if (rec == records.end()) {
      throw_expired(dataset);
    }
    ids.push_back(decode_record(rec->second).first);
    records.erase(rec);
  }
  // S > 1: the chunks' new versions before the MULTI (ChunkVersions); S = 1: in it.
  ChunkVersions versions(m_conn, m_cfg, snap);
  std::map<int64_t, int64_t> counts;
  auto append_chunks = [&] {
    for (const auto& [c, records] : chunks) {
      m_conn.append({"SET", versions.key("rows", c), encode_chunk_records(records)});
      counts[c] = static_cast<int64_t>(records.size());
    }
  };
  if (versions.active() && !chunks.empty()) {
    versions.allocate(chunks.rbegin()->first + 1);
    append_chunks();
    versions.write_out();
  }
  m_conn.append({"MULTI"});
  watched.disarm();
  append_ids_catch_up(k, snap, catch_up);  // first: the HDELs below apply to it
  append_hdel(m_conn, k.ids(snap.inc), ids);
  if (!versions.active()) {
    append_chunks();
  }
  append_live(k, snap, counts);
  if (!indices.empty()) {
    m_conn.append({"HINCRBY", k.manifest(), "rows", std::to_string(-static_cast<int64_t>(indices.size()))});
  }
  m_conn.append({"HINCRBY", k.manifest(), "gen", "1"});
  append_expire_all(k, snap);
  versions.append_commit();
  m_conn.append({"EXEC"});
  if (!exec_ok(m_conn.flush())) {
    return std::nullopt;
  }
  versions.committed();
  // The deleted ids stay in KnownIds: a "maybe" there only costs a lookup.
  watched.turn().ids_unchanged(snap.inc, snap.gen);
  return static_cast<int64_t>(indices.size());
}

}  // namespace vstash::backends::redis
