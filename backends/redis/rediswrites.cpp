// SPDX-License-Identifier: MIT
// Writing a batch of rows into the chunked layout (see redisbackend.cpp): WATCH + snapshot,
// the lookups an upsert needs, then one MULTI/EXEC with the samples, labels, ids and the
// chunks' records.
#include <fmt/format.h>
#include <algorithm>
#include <deque>
#include <map>
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

// The steps of one DatasetRows::write under its WATCH: where the rows go, what they
// change, and the commands of its MULTI.
class BatchWrite {
 public:
  BatchWrite(DatasetRows& rows, Connection& conn, const StoreConfig& cfg, const Snapshot& snap, const RowBatch& batch,
             ChunkVersions& versions)
      : m_rows(rows),
        m_conn(conn),
        m_cfg(cfg),
        m_snap(snap),
        m_keys(snap.keys),
        m_batch(batch),
        m_n(batch.size()),
        m_versions(versions) {}

  // Where each row's id lives now (known: the ids this process wrote, else nullptr) and the
  // index each row takes.
  void place(KnownIds* known);
  // The records of every existing chunk the batch changes (rows written or moved away), read
  // under the WATCH; chunks past the end start empty. ConflictError when an explicit index
  // is held by another id.
  void read_touched();
  // Inside the MULTI: samples, labels, ids, records, live counts and the manifest.
  void append_commit(const StagedChunks& staged);
  // A sharded dataset's commit in two steps: the chunks' new versions (samples, labels,
  // records), before the MULTI; then, inside it, the ids, counts and manifest.
  std::map<int64_t, int64_t> append_chunks(const StagedChunks& staged) {
    append_samples(staged);
    return append_records();
  }
  int64_t new_nchunks() const { return m_new_nchunks; }
  void append_index(const std::map<int64_t, int64_t>& counts) {
    append_ids();
    append_manifest(counts);
  }

 private:
  void locate(KnownIds* known);
  void check_explicit_slots() const;
  void append_samples(const StagedChunks& staged);
  void append_ids();
  std::map<int64_t, int64_t> append_records();
  void append_manifest(const std::map<int64_t, int64_t>& counts);

  DatasetRows& m_rows;
  Connection& m_conn;
  const StoreConfig& m_cfg;
  const Snapshot& m_snap;
  const DatasetKeys& m_keys;
  const RowBatch& m_batch;
  const size_t m_n;
  std::vector<std::optional<int64_t>> m_old;  // where each row's id lived
  IdsCatchUp m_catch_up;
  std::vector<int64_t> m_target;  // the index each row takes
  std::vector<size_t> m_order;    // batch positions by target
  int64_t m_new_next = 0;
  int64_t m_new_nchunks = 0;
  std::set<int64_t> m_touched;
  std::map<int64_t, ChunkRecords> m_existing;
  int64_t m_rows_before = 0;  // live rows of the touched existing chunks
  ChunkVersions& m_versions;
};

// An empty dataset holds no id; after this process's own writes into it (an ingest's
// earlier blocks) only ids it may have written need asking the server.
void BatchWrite::locate(KnownIds* known) {
  if (!known) {
    m_old = m_rows.lookup_ids(m_snap, m_batch.ids, &m_catch_up);
    return;
  }
  m_old.assign(m_n, std::nullopt);
  std::vector<size_t> asked;
  std::vector<std::string> ask;
  for (size_t i = 0; i < m_n; ++i) {
    if (known->may_hold(m_batch.ids[i])) {
      asked.push_back(i);
      ask.push_back(m_batch.ids[i]);
    }
  }
  if (!ask.empty()) {
    const auto found = m_rows.lookup_ids(m_snap, ask, &m_catch_up);
    for (size_t j = 0; j < asked.size(); ++j) {
      m_old[asked[j]] = found[j];
    }
  }
}

void BatchWrite::place(KnownIds* known) {
  locate(known);
  m_target.resize(m_n);
  int64_t next = m_snap.next_index;
  for (size_t i = 0; i < m_n; ++i) {
    m_target[i] = !m_batch.indices.empty() ? m_batch.indices[i] : m_old[i] ? *m_old[i] : next++;
  }
  m_order = order_by_target(m_keys.name, m_target);
  m_new_next = std::max(m_snap.next_index, m_target[m_order.back()] + 1);
  m_new_nchunks = (m_new_next + k_chunk_rows - 1) / k_chunk_rows;
}

void BatchWrite::read_touched() {
  for (size_t i = 0; i < m_n; ++i) {
    m_touched.insert(chunk_of(m_target[i]));
    if (m_old[i] && *m_old[i] != m_target[i]) {
      m_touched.insert(chunk_of(*m_old[i]));
    }
  }
  size_t reads = 0;
  for (const auto c : m_touched) {
    if (c < m_snap.nchunks) {
      m_conn.append({"GET", m_keys.rows(m_snap.inc, c)});
      ++reads;
    }
  }
  if (reads > 0) {
    auto replies = m_conn.flush();
    size_t r = 0;
    for (const auto c : m_touched) {
      if (c < m_snap.nchunks) {
        const auto& reply = *replies[r++];
        if (is_nil(reply)) {
          m_rows.stale_or_expired(m_snap);
        }
        m_existing.emplace(c, decode_chunk_records(as_view(reply)));
      }
    }
  }
  for (const auto& [c, chunk] : m_existing) {
    m_rows_before += static_cast<int64_t>(chunk.size());
  }
  check_explicit_slots();
}

// With explicit indices a slot may only be taken over from the same id (a rewrite).
void BatchWrite::check_explicit_slots() const {
  if (m_batch.indices.empty()) {
    return;
  }
  for (size_t i = 0; i < m_n; ++i) {
    const auto chunk = m_existing.find(chunk_of(m_target[i]));
    if (chunk == m_existing.end()) {
      continue;
    }
    const auto occupant = chunk->second.find(slot_of(m_target[i]));
    if (occupant != chunk->second.end()) {
      auto holder = decode_record(occupant->second).first;
      if (holder != m_batch.ids[i]) {
        throw ConflictError(fmt::format("{}: dataset \"{}\": index {} is held by id \"{}\", not \"{}\"",
                                        m_rows.location(), m_keys.name, m_target[i], holder, m_batch.ids[i]));
      }
    }
  }
}

void BatchWrite::append_commit(const StagedChunks& staged) {
  append_samples(staged);
  append_ids();
  const auto counts = append_records();
  append_manifest(counts);
}

// One SET (a whole chunk), RENAME (a whole chunk staged) or SETRANGE (a run inside one) per
// run of consecutive target indices, for the samples and the labels.
void BatchWrite::append_samples(const StagedChunks& staged) {
  std::string scratch;  // rows that are not consecutive in the batch, copied together
  // The bytes of rows order[first .. first+count) of a: a view when they are consecutive in
  // the batch (an ingest block always is), else a copy in scratch.
  auto blob = [&](const Array& a, size_t width, size_t first, size_t count) -> std::string_view {
    bool contiguous = true;
    for (size_t j = 1; j < count && contiguous; ++j) {
      contiguous = m_order[first + j] == m_order[first] + j;
    }
    if (contiguous) {
      return {reinterpret_cast<const char*>(a.data()) + m_order[first] * width, count * width};
    }
    scratch.clear();
    for (size_t j = 0; j < count; ++j) {
      scratch.append(reinterpret_cast<const char*>(a.data()) + m_order[first + j] * width, width);
    }
    return scratch;
  };
  for (size_t begin = 0; begin < m_n;) {
    const int64_t c = chunk_of(m_target[m_order[begin]]);
    size_t end = begin;
    while (end < m_n && chunk_of(m_target[m_order[end]]) == c) {
      ++end;
    }
    const std::string ck = m_versions.key("chunk", c);
    const std::string lk = m_batch.labels ? m_versions.key("labels", c) : std::string();
    for (size_t run = begin; run < end;) {
      size_t stop = run + 1;
      while (stop < end && m_target[m_order[stop]] == m_target[m_order[stop - 1]] + 1) {
        ++stop;
      }
      const auto count = stop - run;
      const bool whole = count == static_cast<size_t>(k_chunk_rows);
      const auto slot = static_cast<size_t>(slot_of(m_target[m_order[run]]));
      for (const bool label : {false, true}) {
        if (label && !m_batch.labels) {
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
        const size_t width = label ? m_snap.label_bytes : m_snap.row_bytes;
        const auto bytes = blob(label ? *m_batch.labels : m_batch.data, width, run, count);
        const std::string& key = label ? lk : ck;
        m_versions.prepare(label ? "labels" : "chunk", c, whole);
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

// The ids hash: what the lookup read past ids_from first, then this batch's ids, but only
// where the hash must hold them: rows in chunks below ids_from, and ids it already holds
// (their index may have moved). A fresh ingest's rows all lie past ids_from (0) and cost
// the server no hash field each; the first lookup adds them (lookup_ids).
void BatchWrite::append_ids() {
  m_rows.append_ids_catch_up(m_keys, m_snap, m_catch_up);
  const int64_t ids_from = m_catch_up.upto >= 0 ? m_catch_up.upto : m_snap.ids_from;
  std::vector<std::pair<std::string_view, int64_t>> fields;
  for (size_t i = 0; i < m_n; ++i) {
    if (chunk_of(m_target[i]) < ids_from || m_old[i]) {
      fields.emplace_back(m_batch.ids[i], m_target[i]);
    }
  }
  m_rows.append_index_fields(m_keys, m_snap, fields);
}

// Records: a moved row leaves its old slot, then every row takes its target slot. A chunk
// no existing row shares (an ingest's new chunks) is encoded straight from the batch.
// Returns the live rows of every chunk written.
std::map<int64_t, int64_t> BatchWrite::append_records() {
  for (size_t i = 0; i < m_n; ++i) {
    if (m_old[i] && *m_old[i] != m_target[i]) {
      m_existing.at(chunk_of(*m_old[i])).erase(slot_of(*m_old[i]));
    }
  }
  std::map<int64_t, int64_t> counts;
  std::vector<std::pair<int64_t, std::string_view>> fresh;
  std::deque<std::string> records;
  for (size_t begin = 0; begin < m_n;) {
    const int64_t c = chunk_of(m_target[m_order[begin]]);
    size_t end = begin;
    while (end < m_n && chunk_of(m_target[m_order[end]]) == c) {
      ++end;
    }
    const auto found = m_existing.find(c);
    fresh.clear();
    for (size_t j = begin; j < end; ++j) {
      const size_t i = m_order[j];
      auto& record =
          records.emplace_back(encode_record(m_batch.ids[i], m_batch.metadata.empty() ? json() : m_batch.metadata[i]));
      if (found != m_existing.end()) {
        found->second[slot_of(m_target[i])] = std::move(record);
      } else {
        fresh.emplace_back(slot_of(m_target[i]), record);
      }
    }
    if (found == m_existing.end()) {
      m_conn.append({"SET", m_versions.key("rows", c), encode_chunk_records(fresh)});
      counts[c] = static_cast<int64_t>(fresh.size());
    }
    begin = end;
  }
  for (const auto& [c, chunk] : m_existing) {
    m_conn.append({"SET", m_versions.key("rows", c), encode_chunk_records(chunk)});
    counts[c] = static_cast<int64_t>(chunk.size());
  }
  // Empty records for new chunks this batch leaves empty (a gap below an explicit index):
  // every chunk below nchunks has its records key, so a vanished one is visible.
  const std::string no_records = encode_chunk_records(ChunkRecords());
  for (int64_t c = m_snap.nchunks; c < m_new_nchunks; ++c) {
    if (m_touched.count(c) == 0) {
      m_conn.append({"SET", m_versions.key("rows", c), no_records});
      counts[c] = 0;
    }
  }
  return counts;
}

// Live counts, "rows", next_index, nchunks, gen, the datasets set and every key's ttl.
void BatchWrite::append_manifest(const std::map<int64_t, int64_t>& counts) {
  int64_t rows_after = 0;
  for (const auto& [c, live] : counts) {
    rows_after += live;
  }
  m_rows.append_live(m_keys, m_snap, counts);
  if (rows_after != m_rows_before) {
    m_conn.append({"HINCRBY", m_keys.manifest(), "rows", std::to_string(rows_after - m_rows_before)});
  }
  const std::string next_text = std::to_string(m_new_next);
  const std::string nchunks_text = std::to_string(m_new_nchunks);
  m_conn.append({"HSET", m_keys.manifest(), "next_index", next_text, "nchunks", nchunks_text});
  m_conn.append({"HINCRBY", m_keys.manifest(), "gen", "1"});
  m_conn.append({"SADD", m_cfg.prefix + "datasets", m_keys.name});
  m_rows.append_expire_all(m_keys, m_snap, m_new_nchunks);
}

// The ids this process wrote into the dataset, if it has kept count of them since it found
// the dataset empty (a light snapshot knows rows only when there is no chunk).
KnownIds* known_ids(CommitTurn& turn, const Snapshot& snap) {
  KnownIds* known = turn.known_at(snap.inc, snap.gen);
  if (!known && snap.rows == 0) {
    turn.known.emplace(snap.inc, snap.gen);
    known = &*turn.known;
  }
  return known;
}

// After the EXEC: the batch's ids join the known ones, now as of gen + 1.
void remember_ids(CommitTurn& turn, KnownIds* known, const RowBatch& batch, int64_t gen) {
  if (!known) {
    return;
  }
  if (known->size() + batch.size() > k_known_ids_max) {
    turn.known.reset();
    return;
  }
  for (const auto& id : batch.ids) {
    known->add(id);
  }
  known->gen = gen + 1;
}

}  // namespace

bool DatasetRows::write(const std::string& dataset, const RowBatch& batch) {
  const DatasetKeys k(m_cfg, dataset);
  StagedChunks staged(m_conn, k, batch, commit_turn(m_conn.location(), k.manifest()).shards.load() <= 1);
  VersionBound bound{static_cast<int64_t>(batch.size()), 0};
  if (!batch.indices.empty()) {
    bound = {0, *std::max_element(batch.indices.begin(), batch.indices.end()) + 1};
  }
  Watched watched(*this, k, &staged, /*light=*/true, batch.size() > 0 ? &bound : nullptr);
  Snapshot& snap = watched.snap();
  ChunkVersions versions(m_conn, m_cfg, snap);  // from here, a version taken unused is unlinked
  versions.adopt(snap.version, bound.chunks(snap.next_index));
  check_batch(snap.spec, batch);
  if (batch.size() == 0) {
    return true;
  }
  if (snap.layout != k_layout) {
    migrate_layout(snap);
    return false;  // again, in layout 3
  }
  CommitTurn& turn = watched.turn();
  KnownIds* known = known_ids(turn, snap);
  BatchWrite write(*this, m_conn, m_cfg, snap, batch, versions);
  write.place(known);
  write.read_touched();
  std::map<int64_t, int64_t> counts;
  if (versions.active()) {
    staged.unusable();
    versions.allocate(write.new_nchunks());
    counts = write.append_chunks(staged);
    versions.write_out();
  }
  m_conn.append({"MULTI"});
  watched.disarm();  // EXEC (or its abort) ends the WATCH from here on
  if (versions.active()) {
    write.append_index(counts);
    versions.append_commit();
  } else {
    write.append_commit(staged);
  }
  m_conn.append({"EXEC"});
  auto replies = m_conn.flush();
  if (!exec_ok(replies)) {
    return false;
  }
  versions.committed();
  staged.renamed();
  for (size_t i = 0; i < array_size(*replies.back()); ++i) {
    m_conn.check(element(*replies.back(), i));
  }
  // Only now, with every command of the EXEC known to have succeeded, may the ids advance
  // (still ours: the turn is held until this write returns).
  turn.advanced(snap.inc, snap.gen);
  remember_ids(turn, known, batch, snap.gen);
  return true;
}

}  // namespace vstash::backends::redis
