// SPDX-License-Identifier: MIT
// What the writers of one process share per dataset: the commit turn, the ids they wrote
// (KnownIds) and the chunks a writer stages before its turn (StagedChunks).
#include <fmt/format.h>
#include <memory>
#include <mutex>
#include <random>

#include "backends/redis/redisrows.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

StagedChunks::StagedChunks(Connection& conn, const DatasetKeys& k, const RowBatch& batch, bool enabled) : m_conn(conn) {
  const size_t n = batch.size();
  if (!enabled || batch.indices.empty() || n < static_cast<size_t>(k_chunk_rows)) {
    return;
  }
  for (size_t i = 1; i < n; ++i) {
    if (batch.indices[i] != batch.indices[0] + static_cast<int64_t>(i)) {
      return;  // only a run of consecutive indices fills whole chunks from consecutive bytes
    }
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::string token = fmt::format("{:016x}", rng());
  const int64_t first = batch.indices.front();
  const int64_t end = first + static_cast<int64_t>(n);
  const size_t row_bytes = batch.data.nbytes() / n;
  const std::string ttl = std::to_string(k_stage_ttl_ms);
  for (int64_t c = (first + k_chunk_rows - 1) / k_chunk_rows; (c + 1) * k_chunk_rows <= end; ++c) {
    const auto row = static_cast<size_t>(c * k_chunk_rows - first);
    const std::string_view bytes(reinterpret_cast<const char*>(batch.data.data()) + row * row_bytes,
                                 k_chunk_rows * row_bytes);
    const std::string& key = m_keys.emplace(c, fmt::format("{}stage:{}:{}", k.base, token, c)).first->second;
    m_conn.append({"SET", key, bytes, "PX", ttl});  // sent now; the replies are read with the WATCH's
  }
}

StagedChunks::~StagedChunks() {
  if (m_keys.empty() || !m_conn.connected()) {
    return;  // renamed into place, or left to their own expiry
  }
  try {
    std::vector<std::string_view> args = {"UNLINK"};
    for (const auto& [c, key] : m_keys) {
      args.push_back(key);
    }
    m_conn.append(args);
    m_conn.flush();
  } catch (...) {  // NOLINT(bugprone-empty-catch): they expire after k_stage_ttl_ms
  }
}

void StagedChunks::append_watch() {
  if (m_keys.empty()) {
    return;
  }
  std::vector<std::string_view> args = {"WATCH"};
  for (const auto& [c, key] : m_keys) {
    args.push_back(key);
  }
  m_conn.append(args);
  args.front() = "EXISTS";
  m_conn.append(args);
}

void StagedChunks::check_watched(const redisReply& exists) {
  if (as_int(exists) != static_cast<int64_t>(m_keys.size())) {
    m_unusable = true;  // one was evicted or expired: the commit sends the bytes itself
  }
}

const std::string* StagedChunks::find(int64_t chunk) const {
  const auto at = m_keys.find(chunk);
  return m_unusable || at == m_keys.end() ? nullptr : &at->second;
}

CommitTurn& commit_turn(const std::string& location, const std::string& manifest) {
  static std::mutex guard;
  static std::map<std::string, std::unique_ptr<CommitTurn>> turns;
  const std::lock_guard lock(guard);
  auto& turn = turns[location + '\n' + manifest];
  if (!turn) {
    turn = std::make_unique<CommitTurn>();
  }
  return *turn;
}

uint64_t KnownIds::hash_of(std::string_view id) {
  const uint64_t h = std::hash<std::string_view>{}(id);
  return h == 0 ? 1 : h;
}

bool KnownIds::may_hold(std::string_view id) const {
  if (m_slots.empty()) {
    return false;
  }
  const uint64_t h = hash_of(id);
  const size_t mask = m_slots.size() - 1;
  for (size_t at = h & mask;; at = (at + 1) & mask) {
    if (m_slots[at] == h) {
      return true;
    }
    if (m_slots[at] == 0) {
      return false;
    }
  }
}

void KnownIds::add(std::string_view id) {
  if (2 * (m_size + 1) > m_slots.size()) {
    std::vector<uint64_t> old(std::max<size_t>(1024, 2 * m_slots.size()), 0);
    old.swap(m_slots);
    m_size = 0;
    const size_t mask = m_slots.size() - 1;
    for (const uint64_t h : old) {
      if (h != 0) {
        size_t at = h & mask;
        while (m_slots[at] != 0) {
          at = (at + 1) & mask;
        }
        m_slots[at] = h;
        ++m_size;
      }
    }
  }
  const uint64_t h = hash_of(id);
  const size_t mask = m_slots.size() - 1;
  size_t at = h & mask;
  while (m_slots[at] != 0) {
    if (m_slots[at] == h) {
      return;
    }
    at = (at + 1) & mask;
  }
  m_slots[at] = h;
  ++m_size;
}

KnownIds* CommitTurn::known_at(const std::string& inc, int64_t gen) {
  if (known && (known->inc != inc || known->gen != gen)) {
    known.reset();
  }
  return known ? &*known : nullptr;
}

void CommitTurn::ids_unchanged(const std::string& inc, int64_t gen) {
  if (KnownIds* ids = known_at(inc, gen)) {
    ids->gen = gen + 1;
  }
  advanced(inc, gen);
}

}  // namespace vstash::backends::redis
