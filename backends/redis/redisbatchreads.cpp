// SPDX-License-Identifier: MIT
// Batch reads by position in layout 3 (DatasetRows::read_fast, the data loader's path): the
// positions become indices through the cached live counts and offset tables, then one
// pipelined round reads the runs of rows, checked like a seqlock.
#include <fmt/format.h>
#include <algorithm>
#include <cstring>
#include <map>

#include "backends/redis/redisrows.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

namespace {

constexpr size_t k_round_head = 2;  // a round's replies before its reads: HMGET, EXISTS

// End offset of slot s in an offset table (-1: before slot 0).
uint32_t end_of(const std::string& table, int64_t s) {
  return s < 0 ? 0 : load_u32(table.data() + 4 * static_cast<size_t>(s));
}

// A run of consecutive indices in one chunk: one GETRANGE each for its records, samples and labels.
struct Run {
  size_t first;  // into indices
  size_t count;
  int64_t chunk, slot;
  uint32_t begin, end;  // the run's records in the chunk's data
};

// The steps of one read_fast over the read cache, which any failed check drops (a write or
// an expiry made it stale) before it answers nullopt or throws "expired or not found".
class BatchRead {
 public:
  BatchRead(const DatasetRows& rows, Connection& conn, const Snapshot& head, std::optional<ReadCache>& cache)
      : m_rows(rows), m_conn(conn), m_head(head), m_keys(head.keys), m_cache(cache) {}

  // Position -> row index; nullopt when the head is stale.
  std::optional<std::vector<int64_t>> indices_of(const std::vector<int64_t>& positions);
  std::vector<Run> runs_of(const std::vector<int64_t>& indices) const;
  // The round that reads the runs; nullopt when a write committed since the head.
  std::optional<std::vector<Reply>> read_runs(const std::vector<Run>& runs, bool records);
  RowBatch assemble(const std::vector<int64_t>& indices, const std::vector<Run>& runs, const std::vector<Reply>& read,
                    bool records);

 private:
  // S > 1: a chunk version missing may have been unlinked by a commit since the head
  // (StaleRead: read again), which a later round than the reads' tells.
  [[noreturn]] void expired() {
    m_cache.reset();
    m_rows.stale_or_expired(m_head);
  }
  void begin_round();
  const redisReply* end_round();
  bool need_tables(const std::vector<int64_t>& chunks);
  bool need_live();
  std::optional<std::vector<int64_t>> live_indices(const std::vector<int64_t>& positions);
  void fill_rows(RowBatch& out, const Run& run, const std::vector<Reply>& read, size_t at, bool records);

  const DatasetRows& m_rows;
  Connection& m_conn;
  const Snapshot& m_head;
  const DatasetKeys& m_keys;
  std::optional<ReadCache>& m_cache;
  std::vector<Reply> m_replies;  // the last round's
};

// Every round trip is one MULTI that starts by re-reading gen and inc: the same gen as the
// head's means no write has committed since (each bumps it in its EXEC), so what the rounds
// read, and the offset tables and counts cached at this gen, are one state of the dataset.
// The ids hash and the live counts are checked too (O(1)): a vanished key of the dataset
// that a read touches is "expired or not found", never a partial row.
void BatchRead::begin_round() {
  m_conn.append({"MULTI"});
  m_conn.append({"HMGET", m_keys.manifest(), "gen", "inc"});
  m_conn.append({"EXISTS", m_keys.ids(m_head.inc), m_keys.live(m_head.inc)});
}

// The EXEC's reply, or nullptr when a write moved gen (the cache is then dropped).
const redisReply* BatchRead::end_round() {
  m_conn.append({"EXEC"});
  m_replies = m_conn.flush();
  const auto& exec = *m_replies.back();
  if (is_nil(exec)) {
    m_cache.reset();
    return nullptr;
  }
  const auto& g = element(exec, 0);
  if (is_nil(element(g, 0))) {
    expired();
  }
  if (as_int(element(g, 0)) != m_head.gen || as_view(element(g, 1)) != m_head.inc) {
    m_cache.reset();
    return nullptr;
  }
  if (as_int(element(exec, 1)) != 2) {
    expired();
  }
  return &exec;
}

// The offset tables of these chunks, read once per (inc, gen) and kept.
// chunks: sorted, each once (distinct_chunks).
bool BatchRead::need_tables(const std::vector<int64_t>& chunks) {
  std::vector<int64_t> missing;
  for (const auto c : chunks) {
    if (m_cache->tables.count(c) == 0) {
      missing.push_back(c);
    }
  }
  if (missing.empty()) {
    return true;
  }
  if (m_cache->tables.size() + missing.size() > k_cached_tables_max) {
    m_cache->tables.clear();  // memory stays bounded: a huge dataset reads its tables again
  }
  begin_round();
  for (const auto c : missing) {
    m_conn.append({"GETRANGE", m_keys.rows(m_head.inc, c), "0", std::to_string(k_records_data - 1)});
  }
  const redisReply* exec = end_round();
  if (exec == nullptr) {
    return false;
  }
  for (size_t j = 0; j < missing.size(); ++j) {
    const auto table = as_view(element(*exec, k_round_head + j));
    if (table.size() != k_records_data || table[0] != 'T') {
      expired();
    }
    m_cache->tables.emplace(missing[j], std::string(table.substr(k_records_table)));
  }
  return true;
}

// The chunks of these indices (or of the first elements of pairs), sorted, each once: a
// sorted vector rather than a std::set, whose node per row cost a shuffled batch 256 allocations.
template <class T, class F>
std::vector<int64_t> distinct_chunks(const std::vector<T>& items, F&& chunk) {
  std::vector<int64_t> out;
  out.reserve(items.size());
  for (const auto& item : items) {
    out.push_back(chunk(item));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// The live counts (2 bytes per chunk) as cumulative row counts, read once per (inc, gen).
bool BatchRead::need_live() {
  if (m_cache->have_live) {
    return true;
  }
  begin_round();
  m_conn.append({"GET", m_keys.live(m_head.inc)});
  const redisReply* exec = end_round();
  if (exec == nullptr) {
    return false;
  }
  const auto live = as_view(element(*exec, k_round_head));
  const auto nchunks = static_cast<size_t>(m_head.nchunks);
  if (is_nil(element(*exec, k_round_head)) || live.size() < 2 * nchunks) {
    expired();
  }
  auto& cumulative = m_cache->cumulative;
  cumulative.assign(nchunks + 1, 0);
  for (size_t c = 0; c < nchunks; ++c) {
    cumulative[c + 1] = cumulative[c] + (static_cast<unsigned char>(live[2 * c]) |
                                         static_cast<int64_t>(static_cast<unsigned char>(live[2 * c + 1])) << 8);
  }
  m_cache->have_live = true;
  return true;
}

// Rows were deleted: a position is a rank among the live rows. The live counts give the
// chunk, the chunk's offset table the slot.
std::optional<std::vector<int64_t>> BatchRead::live_indices(const std::vector<int64_t>& positions) {
  if (!need_live()) {
    return std::nullopt;
  }
  const auto& cumulative = m_cache->cumulative;
  std::vector<std::pair<int64_t, int64_t>> where;  // (chunk, rank)
  where.reserve(positions.size());
  for (const auto p : positions) {
    const auto c =
        static_cast<int64_t>(std::upper_bound(cumulative.begin(), cumulative.end(), p) - cumulative.begin()) - 1;
    if (c < 0 || c >= m_head.nchunks) {
      m_cache.reset();
      return std::nullopt;  // beyond the live rows: a stale head
    }
    where.emplace_back(c, p - cumulative[static_cast<size_t>(c)]);
  }
  const auto chunks = distinct_chunks(where, [](const auto& w) { return w.first; });
  if (!need_tables(chunks)) {
    return std::nullopt;
  }
  std::map<int64_t, std::vector<int64_t>> slots;  // chunk -> its live slots
  for (const auto c : chunks) {
    auto& v = slots[c];
    const std::string& table = m_cache->tables.at(c);
    for (int64_t s = 0; s < k_chunk_rows; ++s) {
      if (end_of(table, s) > end_of(table, s - 1)) {
        v.push_back(s);
      }
    }
  }
  std::vector<int64_t> indices(positions.size());
  for (size_t i = 0; i < where.size(); ++i) {
    const auto& v = slots[where[i].first];
    if (where[i].second >= static_cast<int64_t>(v.size())) {
      expired();  // the counts disagree with the table at one gen
    }
    indices[i] = where[i].first * k_chunk_rows + v[static_cast<size_t>(where[i].second)];
  }
  return indices;
}

std::optional<std::vector<int64_t>> BatchRead::indices_of(const std::vector<int64_t>& positions) {
  if (m_head.rows != m_head.next_index) {
    return live_indices(positions);
  }
  if (!need_tables(distinct_chunks(positions, [](int64_t idx) { return chunk_of(idx); }))) {
    return std::nullopt;
  }
  return positions;
}

// Per run of consecutive indices in one chunk (a read_rows range; single rows when
// shuffled), the bounds of its records from the cached table.
std::vector<Run> BatchRead::runs_of(const std::vector<int64_t>& indices) const {
  std::vector<Run> runs;
  const size_t n = indices.size();
  runs.reserve(n);
  for (size_t i = 0; i < n;) {
    size_t e = i + 1;
    while (e < n && indices[e] == indices[e - 1] + 1 && chunk_of(indices[e]) == chunk_of(indices[i])) {
      ++e;
    }
    const int64_t c = chunk_of(indices[i]);
    const std::string& table = m_cache->tables.at(c);
    runs.push_back({i, e - i, c, slot_of(indices[i]), end_of(table, slot_of(indices[i]) - 1),
                    end_of(table, slot_of(indices[e - 1]))});
    i = e;
  }
  return runs;
}

// The last round is a plain pipeline, not a MULTI (whose QUEUED reply per command cost the
// server and the client as much as the reads): it checks the keys, reads, then reads gen
// and inc again. Every write bumps gen in the EXEC that changes the dataset's keys, so gen
// still head's after the reads means none committed between head and them (a seqlock):
// the reads, and the tables cached at that gen, saw one state of the dataset.
std::optional<std::vector<Reply>> BatchRead::read_runs(const std::vector<Run>& runs, bool records) {
  m_conn.append({"EXISTS", m_keys.ids(m_head.inc), m_keys.live(m_head.inc)});
  // Keys are built in place (k.rows(inc, n) etc.): a shuffled batch names hundreds of them.
  std::string key;
  auto key_of = [&](std::string_view kind, int64_t chunk) -> const std::string& {
    m_keys.key_into(key, kind, m_head.inc, chunk);
    return key;
  };
  for (const auto& r : runs) {
    const auto s = static_cast<size_t>(r.slot);
    if (records) {
      m_conn.append({"GETRANGE", key_of("rows", r.chunk), std::to_string(k_records_data + r.begin),
                     std::to_string(static_cast<int64_t>(k_records_data + r.end) - 1)});
    }
    m_conn.append({"GETRANGE", key_of("chunk", r.chunk), std::to_string(s * m_head.row_bytes),
                   std::to_string((s + r.count) * m_head.row_bytes - 1)});
    if (m_head.label_bytes > 0) {
      m_conn.append({"GETRANGE", key_of("labels", r.chunk), std::to_string(s * m_head.label_bytes),
                     std::to_string((s + r.count) * m_head.label_bytes - 1)});
    }
  }
  m_conn.append({"HMGET", m_keys.manifest(), "gen", "inc"});
  auto read = m_conn.flush();
  const auto& g = *read.back();
  if (is_nil(element(g, 0))) {
    expired();
  }
  if (as_int(element(g, 0)) != m_head.gen || as_view(element(g, 1)) != m_head.inc) {
    m_cache.reset();
    return std::nullopt;  // a write committed since head: read again
  }
  if (as_int(*read.front()) != 2) {
    expired();
  }
  return read;
}

// One run's rows into out, from its replies (records, samples, labels) starting at `at`.
void BatchRead::fill_rows(RowBatch& out, const Run& r, const std::vector<Reply>& read, size_t at, bool records) {
  const size_t e = at + (records ? 1 : 0);  // the run's samples
  const auto samples = as_view(*read[e]);
  const auto blob = records ? as_view(*read[at]) : std::string_view();
  if (r.end < r.begin || (records && blob.size() != r.end - r.begin) || samples.size() != r.count * m_head.row_bytes) {
    expired();
  }
  const std::string& table = m_cache->tables.at(r.chunk);
  for (size_t i = 0; i < r.count; ++i) {
    const int64_t s = r.slot + static_cast<int64_t>(i);
    const uint32_t from = end_of(table, s - 1);
    const uint32_t to = end_of(table, s);
    if (to <= from) {
      expired();  // no record at one gen: the row did not go through vstash
    }
    if (!records) {
      continue;
    }
    auto [id, meta] = decode_record(blob.substr(from - r.begin, to - from));
    out.ids[r.first + i] = std::move(id);
    out.metadata[r.first + i] = std::move(meta);
  }
  std::memcpy(out.data.row(static_cast<int64_t>(r.first)).data(), samples.data(), samples.size());
  if (out.labels) {
    const auto labels = as_view(*read[e + 1]);
    if (labels.size() != r.count * m_head.label_bytes) {
      expired();
    }
    std::memcpy(out.labels->row(static_cast<int64_t>(r.first)).data(), labels.data(), labels.size());
  }
}

RowBatch BatchRead::assemble(const std::vector<int64_t>& indices, const std::vector<Run>& runs,
                             const std::vector<Reply>& read, bool records) {
  const size_t n = indices.size();
  RowBatch out = shaped_batch(m_head.spec, n);
  out.ids.resize(n);
  out.metadata.resize(n);
  out.indices = indices;
  const size_t per_run = (m_head.label_bytes > 0 ? 2 : 1) + (records ? 1 : 0);
  for (size_t j = 0; j < runs.size(); ++j) {
    fill_rows(out, runs[j], read, 1 + j * per_run, records);  // after the EXISTS
  }
  return out;
}

}  // namespace

std::optional<RowBatch> DatasetRows::read_fast(const Snapshot& h, const std::vector<int64_t>& positions, bool records) {
  if (!m_read_cache || m_read_cache->head.keys.name != h.keys.name || m_read_cache->head.inc != h.inc ||
      m_read_cache->head.gen != h.gen) {
    m_read_cache.emplace(ReadCache{h, {}, {}, false});
  }
  BatchRead read(*this, m_conn, h, m_read_cache);
  const auto indices = read.indices_of(positions);
  if (!indices) {
    return std::nullopt;
  }
  const auto runs = read.runs_of(*indices);
  const auto replies = read.read_runs(runs, records);
  if (!replies) {
    return std::nullopt;
  }
  return read.assemble(*indices, runs, *replies, records);
}

}  // namespace vstash::backends::redis
