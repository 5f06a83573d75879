// SPDX-License-Identifier: MIT
// Reading rows by index and scanning chunks: load, read_positions (layout 2), read_chunks,
// labels and filters.
#include <fmt/format.h>
#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <set>

#include "backends/common/rowcheck.hpp"
#include "backends/redis/redisrows.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

std::optional<RowBatch> DatasetRows::read_positions(const Snapshot& snap, const std::vector<int64_t>& positions) {
  // Position -> (chunk, rank among the chunk's live rows) through the snapshot's counts.
  std::vector<int64_t> cumulative(snap.live.size() + 1, 0);
  for (size_t c = 0; c < snap.live.size(); ++c) {
    cumulative[c + 1] = cumulative[c] + snap.live[c];
  }
  std::vector<std::pair<int64_t, int64_t>> where;
  std::set<int64_t> chunks;
  for (const auto p : positions) {
    const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), p);
    const auto c = static_cast<int64_t>(it - cumulative.begin()) - 1;
    where.emplace_back(c, p - cumulative[static_cast<size_t>(c)]);
    chunks.insert(c);
  }
  for (const auto c : chunks) {
    m_conn.append({"GET", snap.keys.rows(snap.inc, c)});
  }
  auto replies = m_conn.flush();
  std::unordered_map<int64_t, std::vector<int64_t>> slots;
  size_t r = 0;
  for (const auto c : chunks) {
    const auto& reply = *replies[r++];
    const auto parsed = is_nil(reply) ? ChunkRecords() : decode_chunk_records(as_view(reply));
    if (is_nil(reply) || static_cast<int64_t>(parsed.size()) != snap.live[static_cast<size_t>(c)]) {
      return std::nullopt;  // changed (or vanished) since the snapshot; load() decides which
    }
    auto& v = slots[c];
    for (const auto& [slot, unused] : parsed) {
      v.push_back(slot);
    }
  }
  std::vector<int64_t> indices;
  indices.reserve(where.size());
  for (const auto& [c, rank] : where) {
    indices.push_back(c * k_chunk_rows + slots[c][static_cast<size_t>(rank)]);
  }
  return load(snap, indices, true);
}

namespace {

using SlotsByChunk = std::map<int64_t, std::vector<int64_t>>;  // chunk -> sorted unique slots
struct SlotRun {
  int64_t chunk, first, count;
};
// A row's record, sample bytes and label bytes, viewing the replies.
struct Cell {
  std::string_view record, sample, label;
};

SlotsByChunk slots_by_chunk(const std::vector<int64_t>& indices) {
  SlotsByChunk by_chunk;
  for (const auto idx : indices) {
    by_chunk[chunk_of(idx)].push_back(slot_of(idx));
  }
  for (auto& [c, v] : by_chunk) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  return by_chunk;
}

std::vector<SlotRun> slot_runs(const SlotsByChunk& by_chunk) {
  std::vector<SlotRun> runs;
  for (const auto& [c, v] : by_chunk) {
    for (size_t j = 0; j < v.size();) {
      size_t e = j + 1;
      while (e < v.size() && v[e] == v[e - 1] + 1) {
        ++e;
      }
      runs.push_back({c, v[j], static_cast<int64_t>(e - j)});
      j = e;
    }
  }
  return runs;
}

// One GETRANGE per run of consecutive slots, for the samples and (with labels) the labels.
void append_value_reads(Connection& conn, const Snapshot& snap, const std::vector<SlotRun>& runs) {
  for (const auto& run : runs) {
    for (const bool label : {false, true}) {
      const size_t width = label ? snap.label_bytes : snap.row_bytes;
      if (width == 0) {
        continue;
      }
      const std::string key = label ? snap.keys.labels(snap.inc, run.chunk) : snap.keys.chunk(snap.inc, run.chunk);
      const std::string a = std::to_string(static_cast<size_t>(run.first) * width);
      const std::string b = std::to_string(static_cast<size_t>(run.first + run.count) * width - 1);
      conn.append({"GETRANGE", key, a, b});
    }
  }
}

// The rows' records (owned by `owned`) and value bytes from the EXEC's replies after gen.
std::map<int64_t, Cell> read_cells(const DatasetRows& rows, const Snapshot& snap, const redisReply& exec,
                                   const SlotsByChunk& by_chunk, const std::vector<SlotRun>& runs,
                                   std::deque<ChunkRecords>& owned) {
  std::map<int64_t, Cell> cells;
  size_t e = 1;
  for (const auto& [c, v] : by_chunk) {
    const auto& r = element(exec, e++);
    if (is_nil(r)) {
      rows.stale_or_expired(snap);
    }
    const auto& records = owned.emplace_back(decode_chunk_records(as_view(r)));
    for (const auto slot : v) {
      const auto rec = records.find(slot);
      if (rec == records.end()) {
        rows.stale_or_expired(snap);  // gen unchanged: the row did not go through vstash
      }
      cells[c * k_chunk_rows + slot].record = rec->second;
    }
  }
  for (const auto& run : runs) {
    for (const bool label : {false, true}) {
      const size_t width = label ? snap.label_bytes : snap.row_bytes;
      if (width == 0) {
        continue;
      }
      const auto bytes = as_view(element(exec, e++));
      if (bytes.size() != static_cast<size_t>(run.count) * width) {
        rows.stale_or_expired(snap);
      }
      for (int64_t j = 0; j < run.count; ++j) {
        auto& cell = cells[run.chunk * k_chunk_rows + run.first + j];
        (label ? cell.label : cell.sample) = bytes.substr(static_cast<size_t>(j) * width, width);
      }
    }
  }
  return cells;
}

}  // namespace

RowBatch shaped_batch(const DatasetSpec& spec, size_t n) {
  RowBatch out;
  Shape shape = {static_cast<int64_t>(n)};
  shape.insert(shape.end(), spec.row_shape.begin(), spec.row_shape.end());
  out.data = Array(spec.dtype, shape);
  if (spec.label_dtype) {
    Shape ls = {static_cast<int64_t>(n)};
    ls.insert(ls.end(), spec.label_shape.begin(), spec.label_shape.end());
    out.labels = Array(*spec.label_dtype, ls);
  }
  return out;
}

std::optional<RowBatch> DatasetRows::load(const Snapshot& snap, const std::vector<int64_t>& indices, bool values) {
  const SlotsByChunk by_chunk = slots_by_chunk(indices);
  const std::vector<SlotRun> runs = values ? slot_runs(by_chunk) : std::vector<SlotRun>();
  // One MULTI: gen, the chunks' records, then one GETRANGE per run of consecutive slots.
  m_conn.append({"MULTI"});
  m_conn.append({"HGET", snap.keys.manifest(), "gen"});
  for (const auto& [c, v] : by_chunk) {
    m_conn.append({"GET", snap.keys.rows(snap.inc, c)});
  }
  append_value_reads(m_conn, snap, runs);
  m_conn.append({"EXEC"});
  auto replies = m_conn.flush();
  const auto& exec = *replies.back();
  if (is_nil(exec) || is_nil(element(exec, 0)) || as_int(element(exec, 0)) != snap.gen) {
    if (!is_nil(exec) && is_nil(element(exec, 0))) {
      throw_expired(snap.keys.name);
    }
    return std::nullopt;
  }
  std::deque<ChunkRecords> owned;  // what cells' records view
  const auto cells = read_cells(*this, snap, exec, by_chunk, runs, owned);
  RowBatch out = shaped_batch(snap.spec, indices.size());
  const auto n = static_cast<int64_t>(indices.size());
  for (int64_t i = 0; i < n; ++i) {
    const auto& cell = cells.at(indices[static_cast<size_t>(i)]);
    auto [id, meta] = decode_record(cell.record);
    out.ids.push_back(std::move(id));
    out.indices.push_back(indices[static_cast<size_t>(i)]);
    out.metadata.push_back(std::move(meta));
    if (values) {
      std::memcpy(out.data.row(i).data(), cell.sample.data(), cell.sample.size());
      if (out.labels) {
        std::memcpy(out.labels->row(i).data(), cell.label.data(), cell.label.size());
      }
    }
  }
  return out;
}

std::vector<ChunkData> DatasetRows::read_chunks(const Snapshot& snap, int64_t first, int64_t last, bool records,
                                                bool samples) {
  for (int64_t c = first; c < last; ++c) {
    m_conn.append({"GET", snap.keys.rows(snap.inc, c)});
    if (samples) {
      m_conn.append({"GET", snap.keys.chunk(snap.inc, c)});
    }
  }
  auto replies = m_conn.flush();
  std::vector<ChunkData> out;
  size_t r = 0;
  for (int64_t c = first; c < last; ++c) {
    ChunkData d;
    d.n = c;
    const auto& rows = *replies[r++];
    if (is_nil(rows)) {
      stale_or_expired(snap);
    }
    d.records = decode_chunk_records(as_view(rows));
    if (!records) {
      for (auto& [slot, record] : d.records) {
        record.clear();
      }
    }
    if (samples) {
      const auto& blob = *replies[r++];
      d.samples = as_string(blob);
      const size_t need = d.records.empty() ? 0 : static_cast<size_t>(d.records.rbegin()->first + 1) * snap.row_bytes;
      if (d.samples.size() < need) {
        stale_or_expired(snap);
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

void DatasetRows::read_labels(const Snapshot& snap, std::vector<ChunkData>& chunks) {
  for (const auto& d : chunks) {
    m_conn.append({"GET", snap.keys.labels(snap.inc, d.n)});
  }
  auto replies = m_conn.flush();
  for (size_t i = 0; i < chunks.size(); ++i) {
    auto& d = chunks[i];
    d.labels = is_nil(*replies[i]) ? std::string() : as_string(*replies[i]);
    const size_t need = d.records.empty() ? 0 : static_cast<size_t>(d.records.rbegin()->first + 1) * snap.label_bytes;
    if (d.labels.size() < need) {
      stale_or_expired(snap);
    }
  }
}

json DatasetRows::label_of(const Snapshot& snap, const ChunkData& chunk, int64_t slot, const Filter& filter) const {
  if (!filter.uses_label()) {
    return nullptr;
  }
  return label_value(*snap.spec.label_dtype, reinterpret_cast<const std::byte*>(chunk.labels.data()) +
                                                 static_cast<size_t>(slot) * snap.label_bytes);
}

std::vector<int64_t> DatasetRows::matching(const Snapshot& snap, const Filter& filter) {
  check_label_filter(&filter, snap.keys.name, snap.spec.label_dtype, snap.spec.label_shape);
  std::vector<int64_t> out;
  for (int64_t first = 0; first < snap.nchunks; first += 64) {
    auto chunks = read_chunks(snap, first, std::min(snap.nchunks, first + 64), true, false);
    if (filter.uses_label()) {
      read_labels(snap, chunks);
    }
    for (const auto& chunk : chunks) {
      for (const auto& [slot, record] : chunk.records) {
        if (filter.matches(decode_record(record).second, label_of(snap, chunk, slot, filter))) {
          out.push_back(chunk.n * k_chunk_rows + slot);
        }
      }
    }
  }
  return out;
}

void DatasetRows::row_as_float(const Snapshot& snap, const std::string& samples, int64_t slot,
                               std::vector<float>& out) const {
  const char* p = samples.data() + static_cast<size_t>(slot) * snap.row_bytes;
  if (snap.spec.dtype == DType::f32) {
    std::memcpy(out.data(), p, snap.row_bytes);
    return;
  }
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(p),
                               reinterpret_cast<const std::byte*>(p) + snap.row_bytes);
  const Array row(snap.spec.dtype, {1, snap.spec.dimension()}, std::move(bytes));
  out = row.row_as_float32(0);
}

}  // namespace vstash::backends::redis
