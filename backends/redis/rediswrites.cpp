// SPDX-License-Identifier: MIT
// Writing a batch of rows into the chunked layout (see redisbackend.cpp): WATCH + snapshot,
// the lookups an upsert needs, then one MULTI/EXEC with the samples, labels, ids and the
// chunks' records.
#include <fmt/format.h>
#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <set>

#include "backends/common/rowcheck.hpp"
#include "backends/redis/redisrows.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

namespace {
// Batch positions sorted by target index; UsageError if two rows target one index.
std::vector<size_t> order_by_target(const std::string& dataset, const std::vector<int64_t>& target) {
  std::vector<size_t> order(target.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return target[a] < target[b]; });
  for (size_t j = 1; j < order.size(); ++j) {
    if (target[order[j]] == target[order[j - 1]]) {
      throw UsageError(fmt::format("dataset \"{}\": index {} appears twice in one batch", dataset, target[order[j]]));
    }
  }
  return order;
}
}  // namespace

StagedChunks::StagedChunks(Connection& conn, const DatasetKeys& k, const RowBatch& batch) : m_conn(conn) {
  const size_t n = batch.size();
  if (batch.indices.empty() || n < static_cast<size_t>(k_chunk_rows)) {
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

bool RowStore::write(const std::string& dataset, const RowBatch& batch) {
  const DatasetKeys k(m_cfg, dataset);
  StagedChunks staged(m_conn, k, batch);
  Watched watched(*this, k, &staged, /*light=*/true);
  Snapshot& snap = watched.snap();
  check_batch(snap.spec, batch);
  const size_t n = batch.size();
  if (n == 0) {
    return true;
  }
  if (snap.layout != k_layout) {
    migrate_layout(snap);
    return false;  // again, in layout 3
  }

  // Where each id lives now. An empty dataset holds none; after this process's own writes
  // into it (an ingest's earlier blocks) only ids it may have written need asking the server.
  CommitTurn& turn = watched.turn();
  KnownIds* known = turn.known_at(snap.inc, snap.gen);
  if (!known && snap.rows == 0) {  // (a light snapshot knows rows only when there is no chunk)
    turn.known.emplace(snap.inc, snap.gen);
    known = &*turn.known;
  }
  std::vector<std::optional<int64_t>> old(n);
  IdsCatchUp catch_up;
  if (known) {
    std::vector<size_t> asked;
    std::vector<std::string> ask;
    for (size_t i = 0; i < n; ++i) {
      if (known->may_hold(batch.ids[i])) {
        asked.push_back(i);
        ask.push_back(batch.ids[i]);
      }
    }
    if (!ask.empty()) {
      const auto found = lookup_ids(snap, ask, &catch_up);
      for (size_t j = 0; j < asked.size(); ++j) {
        old[asked[j]] = found[j];
      }
    }
  } else {
    old = lookup_ids(snap, batch.ids, &catch_up);
  }
  std::vector<int64_t> target(n);
  int64_t next = snap.next_index;
  for (size_t i = 0; i < n; ++i) {
    target[i] = !batch.indices.empty() ? batch.indices[i] : old[i] ? *old[i] : next++;
  }
  const auto order = order_by_target(dataset, target);
  const int64_t new_next = std::max(snap.next_index, target[order.back()] + 1);
  const int64_t new_nchunks = (new_next + k_chunk_rows - 1) / k_chunk_rows;

  // The records of every existing chunk this batch changes (rows written or moved away),
  // read under the WATCH; chunks past the end start empty.
  std::set<int64_t> touched;
  for (size_t i = 0; i < n; ++i) {
    touched.insert(chunk_of(target[i]));
    if (old[i] && *old[i] != target[i]) {
      touched.insert(chunk_of(*old[i]));
    }
  }
  std::map<int64_t, ChunkRecords> existing;
  size_t reads = 0;
  for (const auto c : touched) {
    if (c < snap.nchunks) {
      m_conn.append({"GET", k.rows(snap.inc, c)});
      ++reads;
    }
  }
  if (reads > 0) {
    auto replies = m_conn.flush();
    size_t r = 0;
    for (const auto c : touched) {
      if (c < snap.nchunks) {
        const auto& reply = *replies[r++];
        if (is_nil(reply)) {
          throw_expired(dataset);
        }
        existing.emplace(c, decode_chunk_records(as_view(reply)));
      }
    }
  }
  // Live rows per touched chunk before and after (layout 3's counts and "rows").
  int64_t rows_before = 0;
  for (const auto& [c, chunk] : existing) {
    rows_before += static_cast<int64_t>(chunk.size());
  }
  std::map<int64_t, int64_t> counts;
  // With explicit indices a slot may only be taken over from the same id (a rewrite).
  if (!batch.indices.empty()) {
    for (size_t i = 0; i < n; ++i) {
      const auto chunk = existing.find(chunk_of(target[i]));
      if (chunk == existing.end()) {
        continue;
      }
      const auto occupant = chunk->second.find(slot_of(target[i]));
      if (occupant != chunk->second.end()) {
        auto holder = decode_record(occupant->second).first;
        if (holder != batch.ids[i]) {
          throw ConflictError(fmt::format("redis {}: dataset \"{}\": index {} is held by id \"{}\", not \"{}\"",
                                          m_conn.location(), dataset, target[i], holder, batch.ids[i]));
        }
      }
    }
  }

  m_conn.append({"MULTI"});
  watched.disarm();  // EXEC (or its abort) ends the WATCH from here on
  append_sample_writes(k, snap, batch, order, target, staged);
  // The ids hash: what the lookup read past ids_from first, then this batch's ids, but only
  // where the hash must hold them: rows in chunks below ids_from, and ids it already holds
  // (their index may have moved). A fresh ingest's rows all lie past ids_from (0) and cost
  // the server no hash field each; the first lookup adds them (lookup_ids).
  append_ids_catch_up(k, snap, catch_up);
  const int64_t ids_from = catch_up.upto >= 0 ? catch_up.upto : snap.ids_from;
  std::vector<std::pair<std::string_view, int64_t>> fields;
  for (size_t i = 0; i < n; ++i) {
    if (chunk_of(target[i]) < ids_from || old[i]) {
      fields.emplace_back(batch.ids[i], target[i]);
    }
  }
  append_index_fields(k, snap, fields);
  // Records: a moved row leaves its old slot, then every row takes its target slot. A chunk
  // no existing row shares (an ingest's new chunks) is encoded straight from the batch.
  for (size_t i = 0; i < n; ++i) {
    if (old[i] && *old[i] != target[i]) {
      existing.at(chunk_of(*old[i])).erase(slot_of(*old[i]));
    }
  }
  std::vector<std::pair<int64_t, std::string_view>> fresh;
  std::deque<std::string> records;
  for (size_t begin = 0; begin < n;) {
    const int64_t c = chunk_of(target[order[begin]]);
    size_t end = begin;
    while (end < n && chunk_of(target[order[end]]) == c) {
      ++end;
    }
    const auto found = existing.find(c);
    fresh.clear();
    for (size_t j = begin; j < end; ++j) {
      const size_t i = order[j];
      auto& record =
          records.emplace_back(encode_record(batch.ids[i], batch.metadata.empty() ? json() : batch.metadata[i]));
      if (found != existing.end()) {
        found->second[slot_of(target[i])] = std::move(record);
      } else {
        fresh.emplace_back(slot_of(target[i]), record);
      }
    }
    if (found == existing.end()) {
      m_conn.append({"SET", k.rows(snap.inc, c), encode_chunk_records(fresh)});
      counts[c] = static_cast<int64_t>(fresh.size());
    }
    begin = end;
  }
  for (const auto& [c, chunk] : existing) {
    m_conn.append({"SET", k.rows(snap.inc, c), encode_chunk_records(chunk)});
    counts[c] = static_cast<int64_t>(chunk.size());
  }
  // Empty records for new chunks this batch leaves empty (a gap below an explicit index):
  // every chunk below nchunks has its records key, so a vanished one is visible.
  const std::string no_records = encode_chunk_records(ChunkRecords());
  for (int64_t c = snap.nchunks; c < new_nchunks; ++c) {
    if (touched.count(c) == 0) {
      m_conn.append({"SET", k.rows(snap.inc, c), no_records});
      counts[c] = 0;
    }
  }
  int64_t rows_after = 0;
  for (const auto& [c, live] : counts) {
    rows_after += live;
  }
  append_live(k, snap, counts);
  if (rows_after != rows_before) {
    m_conn.append({"HINCRBY", k.manifest(), "rows", std::to_string(rows_after - rows_before)});
  }
  const std::string next_text = std::to_string(new_next);
  const std::string nchunks_text = std::to_string(new_nchunks);
  m_conn.append({"HSET", k.manifest(), "next_index", next_text, "nchunks", nchunks_text});
  m_conn.append({"HINCRBY", k.manifest(), "gen", "1"});
  m_conn.append({"SADD", m_cfg.prefix + "datasets", dataset});
  append_expire_all(k, snap, new_nchunks);
  m_conn.append({"EXEC"});
  auto replies = m_conn.flush();
  if (!exec_ok(replies)) {
    return false;
  }
  staged.renamed();
  for (size_t i = 0; i < array_size(*replies.back()); ++i) {
    m_conn.check(element(*replies.back(), i));
  }
  // Only now, with every command of the EXEC known to have succeeded, may the ids advance
  // (still ours: the turn is held until this write returns).
  turn.advanced(snap.inc, snap.gen);
  if (known) {
    if (known->size() + n > k_known_ids_max) {
      turn.known.reset();
    } else {
      for (const auto& id : batch.ids) {
        known->add(id);
      }
      known->gen = snap.gen + 1;
    }
  }
  return true;
}

void RowStore::append_sample_writes(const DatasetKeys& k, const Snapshot& snap, const RowBatch& batch,
                                    const std::vector<size_t>& order, const std::vector<int64_t>& target,
                                    const StagedChunks& staged) {
  std::string scratch;  // rows that are not consecutive in the batch, copied together
  // The bytes of rows order[first .. first+count) of a: a view when they are consecutive in
  // the batch (an ingest block always is), else a copy in scratch.
  auto blob = [&](const Array& a, size_t width, size_t first, size_t count) -> std::string_view {
    bool contiguous = true;
    for (size_t j = 1; j < count && contiguous; ++j) {
      contiguous = order[first + j] == order[first] + j;
    }
    if (contiguous) {
      return {reinterpret_cast<const char*>(a.data()) + order[first] * width, count * width};
    }
    scratch.clear();
    for (size_t j = 0; j < count; ++j) {
      scratch.append(reinterpret_cast<const char*>(a.data()) + order[first + j] * width, width);
    }
    return scratch;
  };
  const size_t n = order.size();
  for (size_t begin = 0; begin < n;) {
    const int64_t c = chunk_of(target[order[begin]]);
    size_t end = begin;
    while (end < n && chunk_of(target[order[end]]) == c) {
      ++end;
    }
    const std::string ck = k.chunk(snap.inc, c);
    const std::string lk = k.labels(snap.inc, c);
    for (size_t run = begin; run < end;) {
      size_t stop = run + 1;
      while (stop < end && target[order[stop]] == target[order[stop - 1]] + 1) {
        ++stop;
      }
      const auto count = stop - run;
      const bool whole = count == static_cast<size_t>(k_chunk_rows);
      const auto slot = static_cast<size_t>(slot_of(target[order[run]]));
      for (const bool label : {false, true}) {
        if (label && !batch.labels) {
          continue;
        }
        const std::string* stage = whole && !label ? staged.find(c) : nullptr;
        if (stage != nullptr) {
          m_conn.append({"RENAME", *stage, ck});
          if (m_cfg.ttl <= 0) {
            m_conn.append({"PERSIST", ck});  // else append_expire_all gives it the dataset's ttl
          }
          continue;
        }
        const size_t width = label ? snap.label_bytes : snap.row_bytes;
        const auto bytes = blob(label ? *batch.labels : batch.data, width, run, count);
        const std::string& key = label ? lk : ck;
        if (whole) {
          m_conn.append({"SET", key, bytes});
        } else {
          const std::string offset = std::to_string(slot * width);
          m_conn.append({"SETRANGE", key, offset, bytes});
        }
      }
      run = stop;
    }
    begin = end;
  }
}

}  // namespace vstash::backends::redis
