// SPDX-License-Identifier: MIT
// The catalog's primitive operations over Redis manifests (see redisdatasets.hpp).
#include "backends/redis/redisdatasets.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <chrono>
#include <random>
#include <utility>

namespace vstash::backends::redis {

namespace {

std::string new_incarnation() {
  static thread_local std::mt19937_64 rng{
      std::random_device{}() ^ static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
  return fmt::format("{:016x}", rng());
}

std::string version_of(const Snapshot& snap) { return fmt::format("{}:{}", snap.inc, snap.gen); }

catalog::DatasetRecord record_of(const Snapshot& snap) {
  catalog::DatasetRecord r;
  r.spec = snap.spec;
  r.next_index = snap.next_index;
  r.version = version_of(snap);
  r.extra = {{"inc", snap.inc}};
  return r;
}

}  // namespace

std::optional<Snapshot> RedisDatasetRecords::watched_snapshot(CommitTurn& turn, const DatasetKeys& k) {
  m_conn.append({"WATCH", k.manifest()});
  m_rows.append_snapshot(k, /*light=*/true);
  auto replies = m_conn.flush();
  auto snap = m_rows.parse_snapshot(k.name, *replies[1]);
  m_rows.settle_snapshot(turn, k, snap);
  return snap;
}

std::optional<catalog::DatasetRecord> RedisDatasetRecords::get(const std::string& name) {
  const DatasetKeys k(m_cfg, name);
  CommitTurn& turn = commit_turn(m_conn.location(), k.manifest());
  const std::lock_guard lock(turn.mutex);
  // Light when this process kept the dataset whole since it last saw it so (an ingest's
  // watermark after each block), else every chunk is checked.
  m_armed = true;
  m_watched = watched_snapshot(turn, k);
  if (!m_watched || !m_watched->intact) {
    m_watched.reset();
    return std::nullopt;
  }
  return record_of(*m_watched);
}

void RedisDatasetRecords::release() noexcept {
  m_watched.reset();
  if (std::exchange(m_armed, false) && m_conn.connected()) {
    try {
      m_conn.command({"UNWATCH"});
    } catch (...) {  // NOLINT(bugprone-empty-catch): the connection is reset on its next use
    }
  }
}

std::vector<Snapshot> RedisDatasetRecords::intact_snapshots() {
  std::vector<std::string> names = string_array(*m_conn.command({"SMEMBERS", datasets_key()}));
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    m_rows.append_snapshot(DatasetKeys(m_cfg, n));
  }
  auto replies = m_conn.flush();
  std::vector<Snapshot> out;
  for (size_t i = 0; i < names.size(); ++i) {
    auto snap = m_rows.parse_snapshot(names[i], *replies[i]);
    if (snap && snap->intact) {
      out.push_back(std::move(*snap));
    }
  }
  return out;
}

std::vector<catalog::DatasetRecord> RedisDatasetRecords::list() {
  std::vector<catalog::DatasetRecord> out;
  for (const auto& snap : intact_snapshots()) {
    out.push_back(record_of(snap));
  }
  return out;
}

bool RedisDatasetRecords::insert(const catalog::DatasetRecord& record) {
  const DatasetKeys k(m_cfg, record.spec.name);
  CommitTurn& turn = commit_turn(m_conn.location(), k.manifest());
  const std::lock_guard lock(turn.mutex);
  Unwatch unwatch(m_conn);  // from here on, this call ends the WATCH
  m_armed = false;
  m_watched.reset();
  const auto snap = watched_snapshot(turn, k);
  if (snap && snap->intact) {
    return false;
  }
  const std::string inc = new_incarnation();
  const auto leftovers = snap ? pending_of(*snap) : Pending();
  m_conn.append({"MULTI"});
  unwatch.disarm();
  // A missing or partly expired dataset starts over under a new incarnation; what is left
  // of the old one goes now rather than living on without a ttl.
  m_conn.append({"DEL", k.manifest()});
  if (snap) {
    append_unlink(*snap, leftovers);
  }
  const std::string next_index = std::to_string(record.next_index);
  m_conn.append({"HSET", k.manifest(), "spec", stored_spec_text(record.spec), "inc", inc, "next_index", next_index,
                 "nchunks", "0", "gen", "1", "layout", k_layout, "ids_from", "0", "rows", "0"});
  // Spread over shards (redisshards.cpp): the count is the dataset's for life; S = 1 writes
  // no field, as before shards existed.
  const int64_t shards = m_cfg.shards > 0 ? m_cfg.shards : m_conn.masters();
  if (shards > 1) {
    m_conn.append({"HSET", k.manifest(), "shards", std::to_string(std::min(shards, k_max_shards))});
    m_conn.append({"SET", k.vers(inc), ""});
    append_expire(m_conn, m_cfg, k.vers(inc));
  }
  m_conn.append({"HSET", k.ids(inc), "", ""});
  m_conn.append({"SET", k.live(inc), ""});
  append_expire(m_conn, m_cfg, k.live(inc));
  m_conn.append({"SADD", datasets_key(), record.spec.name});
  append_expire(m_conn, m_cfg, k.manifest());
  append_expire(m_conn, m_cfg, k.ids(inc));
  append_expire(m_conn, m_cfg, datasets_key());
  m_conn.append({"EXEC"});
  if (!exec_ok(m_conn.flush())) {
    return false;
  }
  turn.saw_whole(inc, 1);  // the new, empty incarnation
  // Its first write then knows S > 1 and stages no chunk (a staged key, in the dataset's own
  // slot, could not be renamed into a shard's: its bytes would go twice).
  turn.shards.store(std::min(shards, k_max_shards));
  return true;
}

bool RedisDatasetRecords::compare_and_set(const catalog::DatasetRecord& seen, const catalog::DatasetRecord& next) {
  const DatasetKeys k(m_cfg, seen.spec.name);
  CommitTurn& turn = commit_turn(m_conn.location(), k.manifest());
  const std::lock_guard lock(turn.mutex);
  Unwatch unwatch(m_conn);  // from here on, this call ends the WATCH
  std::optional<Snapshot> snap;
  if (std::exchange(m_armed, false) && m_watched && m_watched->keys.name == k.name &&
      version_of(*m_watched) == seen.version) {
    snap = std::move(m_watched);  // read by get() under the WATCH that is still armed
  } else {
    snap = watched_snapshot(turn, k);
  }
  m_watched.reset();
  if (!snap || !snap->intact || version_of(*snap) != seen.version) {
    return false;
  }
  m_conn.append({"MULTI"});
  unwatch.disarm();
  m_conn.append({"HSET", k.manifest(), "spec", stored_spec_text(next.spec)});
  if (next.next_index != seen.next_index) {
    m_conn.append({"HSET", k.manifest(), "next_index", std::to_string(next.next_index)});
  }
  m_conn.append({"HINCRBY", k.manifest(), "gen", "1"});
  m_rows.append_expire_all(k, *snap);
  m_conn.append({"EXEC"});
  if (!exec_ok(m_conn.flush())) {
    return false;
  }
  turn.ids_unchanged(snap->inc, snap->gen);
  return true;
}

RedisDatasetRecords::Pending RedisDatasetRecords::pending_of(const Snapshot& snap) {
  Pending out;
  if (snap.shards() <= 1) {
    return out;
  }
  auto r = m_conn.command({"HGETALL", snap.keys.pending(snap.inc)});
  for (size_t i = 0; i + 1 < array_size(*r); i += 2) {
    out.emplace_back(static_cast<uint32_t>(as_int(element(*r, i))), as_int(element(*r, i + 1)));
  }
  return out;
}

void RedisDatasetRecords::append_unlink(const Snapshot& snap, const Pending& leftovers) {
  const DatasetKeys& k = snap.keys;
  m_conn.append({"UNLINK", k.ids(snap.inc), k.live(snap.inc)});
  for (int64_t n = 0; n < snap.nchunks; ++n) {
    m_conn.append({"UNLINK", k.rows(snap.inc, n), k.chunk(snap.inc, n), k.labels(snap.inc, n)});
  }
  if (snap.shards() > 1) {
    m_conn.append({"UNLINK", k.vers(snap.inc), k.vseq(snap.inc), k.pending(snap.inc)});
  }
  for (const auto& [version, end] : leftovers) {  // versions a killed writer left
    for (int64_t n = 0; n < std::min(end, snap.nchunks + k_max_leftover_chunks); ++n) {
      m_conn.append({"UNLINK", k.key_at("rows", snap.inc, n, version), k.key_at("chunk", snap.inc, n, version),
                     k.key_at("labels", snap.inc, n, version)});
    }
  }
}

bool RedisDatasetRecords::remove(const std::string& name) {
  const DatasetKeys k(m_cfg, name);
  m_rows.append_snapshot(k);
  auto snap = m_rows.parse_snapshot(name, *m_conn.flush().front());
  const auto leftovers = snap ? pending_of(*snap) : Pending();
  m_conn.append({"MULTI"});
  m_conn.append({"UNLINK", k.manifest()});
  m_conn.append({"SREM", datasets_key(), name});
  if (snap) {
    append_unlink(*snap, leftovers);
  }
  m_conn.append({"EXEC"});
  m_conn.flush();
  return snap.has_value();
}

}  // namespace vstash::backends::redis
