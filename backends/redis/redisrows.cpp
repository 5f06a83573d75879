// SPDX-License-Identifier: MIT
// Chunked rows in Redis: snapshot, pipelined reads, MULTI/EXEC writes.
#include "redisrows.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <fmt/format.h>
#include <set>
#include <unordered_map>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#include "../../src/errors.hpp"
#include "../common/rowcheck.hpp"

namespace vstash::backends::redis {

namespace {
// Atomic view of a dataset: manifest fields plus HLEN of every rows hash and of the ids
// hash. A count of 0 means a key (and its sentinel) vanished, or that a chunk holding live
// rows lost its sample (or label) blob: the dataset is broken, whichever key expired first.
constexpr std::string_view k_snapshot = R"lua(
local m = redis.call('HMGET', KEYS[1], 'spec', 'inc', 'next_index', 'nchunks', 'gen')
if not m[1] then return false end
local base = ARGV[1] .. m[2] .. ':'
local labels = cjson.decode(m[1])['label_dtype'] ~= nil
local counts = {}
for i = 0, tonumber(m[4]) - 1 do
  local c = redis.call('HLEN', base .. 'rows:' .. i)
  if c > 1 and (redis.call('EXISTS', base .. 'chunk:' .. i) == 0 or
                (labels and redis.call('EXISTS', base .. 'labels:' .. i) == 0)) then
    c = 0
  end
  counts[i + 1] = c
end
return {m[1], m[2], m[3], m[4], m[5], redis.call('HLEN', base .. 'ids'), counts}
)lua";

constexpr size_t k_fields_per_command = 1024;

// Clears a WATCH left behind when a mutation stops before its MULTI.
class Unwatch {
 public:
  explicit Unwatch(Connection& conn) : m_conn(conn) {}
  ~Unwatch() {
    if (m_armed && m_conn.connected()) {
      try {
        m_conn.command({"UNWATCH"});
      } catch (...) {  // NOLINT(bugprone-empty-catch): the connection is reset on its next use
      }
    }
  }
  Unwatch(const Unwatch&) = delete;
  Unwatch& operator=(const Unwatch&) = delete;
  void disarm() { m_armed = false; }

 private:
  Connection& m_conn;
  bool m_armed = true;
};

int64_t chunk_of(int64_t index) { return index / k_chunk_rows; }
int64_t slot_of(int64_t index) { return index % k_chunk_rows; }

// Slots of a rows hash reply (HKEYS: every element a field; HGETALL: every other one).
std::map<int64_t, std::string> parse_rows_hash(const redisReply& r, bool with_values) {
  std::map<int64_t, std::string> out;
  const size_t step = with_values ? 2 : 1;
  for (size_t i = 0; i + step - 1 < array_size(r); i += step) {
    const auto field = as_view(element(r, i));
    if (field == "_") {
      continue;
    }
    out.emplace(as_int(element(r, i)), with_values ? as_string(element(r, i + 1)) : std::string());
  }
  return out;
}

bool exec_ok(const std::vector<Reply>& replies) { return !is_nil(*replies.back()); }
}  // namespace

DatasetKeys::DatasetKeys(const StoreConfig& cfg, const std::string& dataset)
    : name(dataset), base(fmt::format("{}ds:{{{}}}:", cfg.prefix, key_escape(dataset))) {}

json spec_to_json(const DatasetSpec& s) {
  json j = {{"dtype", dtype_name(s.dtype)}, {"row_shape", s.row_shape}, {"metric", metric_name(s.metric)},
            {"metadata", s.metadata.is_null() ? json::object() : s.metadata}};
  if (s.label_dtype) {
    j["label_dtype"] = dtype_name(*s.label_dtype);
    j["label_shape"] = s.label_shape;
  }
  return j;
}

DatasetSpec spec_from_json(const std::string& name, const json& j) {
  DatasetSpec s;
  s.name = name;
  s.dtype = parse_dtype_name(j.at("dtype").get<std::string>());
  s.row_shape = j.at("row_shape").get<Shape>();
  s.metric = parse_metric(j.at("metric").get<std::string>());
  s.metadata = j.value("metadata", json::object());
  if (j.contains("label_dtype")) {
    s.label_dtype = parse_dtype_name(j.at("label_dtype").get<std::string>());
    s.label_shape = j.at("label_shape").get<Shape>();
  }
  return s;
}

std::string encode_record(std::string_view id, const json& metadata) {
  const auto n = static_cast<uint32_t>(id.size());
  std::string out(reinterpret_cast<const char*>(&n), sizeof n);
  out.append(id);
  if (!metadata.is_null()) {
    // MessagePack, not JSON text: it keeps arbitrary bytes in strings without a UTF-8 check.
    const auto packed = json::to_msgpack(metadata);
    out.append(reinterpret_cast<const char*>(packed.data()), packed.size());
  }
  return out;
}

std::pair<std::string, json> decode_record(std::string_view r) {
  uint32_t n = 0;
  if (r.size() < sizeof n) {
    throw Error("redis: corrupt row record (too short)");
  }
  std::memcpy(&n, r.data(), sizeof n);
  if (r.size() < sizeof n + n) {
    throw Error("redis: corrupt row record (id overruns the record)");
  }
  std::string id(r.substr(sizeof n, n));
  const auto meta = r.substr(sizeof n + n);
  return {std::move(id), meta.empty() ? json() : json::from_msgpack(meta.begin(), meta.end())};
}

void RowStore::append_snapshot(const DatasetKeys& keys) {
  m_conn.append({"EVAL", k_snapshot, "1", keys.manifest(), keys.base});
}

std::optional<Snapshot> RowStore::parse_snapshot(const std::string& dataset, const redisReply& r) const {
  if (is_nil(r)) {
    return std::nullopt;
  }
  Snapshot s{DatasetKeys(m_cfg, dataset), {}, {}, 0, 0, 0, 0, {}, true, 0, 0};
  s.spec = spec_from_json(dataset, json::parse(as_view(element(r, 0))));
  s.inc = as_string(element(r, 1));
  s.next_index = as_int(element(r, 2));
  s.nchunks = as_int(element(r, 3));
  s.gen = as_int(element(r, 4));
  const int64_t ids = as_int(element(r, 5));
  s.intact = ids >= 1;
  s.rows = std::max<int64_t>(ids - 1, 0);
  const auto& counts = element(r, 6);
  for (size_t i = 0; i < array_size(counts); ++i) {
    const int64_t c = as_int(element(counts, i));
    s.intact = s.intact && c >= 1;
    s.live.push_back(std::max<int64_t>(c - 1, 0));
  }
  s.intact = s.intact && static_cast<int64_t>(s.live.size()) == s.nchunks;
  s.row_bytes = static_cast<size_t>(s.spec.dimension()) * dtype_size(s.spec.dtype);
  s.label_bytes = s.spec.label_dtype ? static_cast<size_t>(shape_product(s.spec.label_shape)) *
                                           dtype_size(*s.spec.label_dtype)
                                     : 0;
  return s;
}

void RowStore::throw_expired(const std::string& dataset) const {
  throw NotFoundError(fmt::format("redis {}: dataset \"{}\": expired or not found", m_conn.location(), dataset));
}

Snapshot RowStore::require(const std::string& dataset) {
  append_snapshot(DatasetKeys(m_cfg, dataset));
  auto snap = parse_snapshot(dataset, *m_conn.flush().front());
  if (!snap || !snap->intact) {
    throw_expired(dataset);
  }
  return std::move(*snap);
}

void RowStore::append_expire_all(const DatasetKeys& k, const Snapshot& snap, int64_t nchunks) {
  if (m_cfg.ttl <= 0) {
    return;
  }
  append_expire(m_conn, m_cfg, k.manifest());
  append_expire(m_conn, m_cfg, k.ids(snap.inc));
  append_expire(m_conn, m_cfg, m_cfg.prefix + "datasets");
  for (int64_t n = 0; n < (nchunks < 0 ? snap.nchunks : nchunks); ++n) {
    append_expire(m_conn, m_cfg, k.rows(snap.inc, n));
    append_expire(m_conn, m_cfg, k.chunk(snap.inc, n));
    if (snap.label_bytes > 0) {
      append_expire(m_conn, m_cfg, k.labels(snap.inc, n));
    }
  }
}

bool RowStore::write(const std::string& dataset, const RowBatch& batch) {
  const DatasetKeys k(m_cfg, dataset);
  m_conn.append({"WATCH", k.manifest()});
  append_snapshot(k);
  Unwatch unwatch(m_conn);
  auto head = m_conn.flush();
  auto snap = parse_snapshot(dataset, *head[1]);
  if (!snap || !snap->intact) {
    throw_expired(dataset);
  }
  check_batch(snap->spec, batch);
  const size_t n = batch.size();
  if (n == 0) {
    return true;
  }

  // Where each id lives now (an empty dataset holds none: a fresh ingest skips the lookup),
  // and (explicit indices) who holds each target slot.
  const auto old = snap->rows == 0 ? std::vector<std::optional<int64_t>>(n) : lookup_ids(*snap, batch.ids);
  std::vector<int64_t> target(n);
  int64_t next = snap->next_index;
  for (size_t i = 0; i < n; ++i) {
    target[i] = !batch.indices.empty() ? batch.indices[i] : old[i] ? *old[i] : next++;
  }
  if (!batch.indices.empty()) {
    std::map<int64_t, std::vector<size_t>> by_chunk;
    for (size_t i = 0; i < n; ++i) {
      by_chunk[chunk_of(target[i])].push_back(i);
    }
    std::vector<std::string> slots;
    for (const auto& [c, rows] : by_chunk) {
      if (c >= snap->nchunks) {
        continue;
      }
      slots.clear();
      const std::string key = k.rows(snap->inc, c);  // named: args holds views into it
      std::vector<std::string_view> args = {"HMGET", key};
      slots.reserve(rows.size());
      for (const auto i : rows) {
        slots.push_back(std::to_string(slot_of(target[i])));
      }
      args.insert(args.end(), slots.begin(), slots.end());
      m_conn.append(args);
    }
    auto replies = m_conn.flush();
    size_t r = 0;
    for (const auto& [c, rows] : by_chunk) {
      if (c >= snap->nchunks) {
        continue;
      }
      for (size_t j = 0; j < rows.size(); ++j) {
        const auto& occupant = element(*replies[r], j);
        if (!is_nil(occupant)) {
          auto holder = decode_record(as_view(occupant)).first;
          if (holder != batch.ids[rows[j]]) {
            throw ConflictError(fmt::format("redis {}: dataset \"{}\": index {} is held by id \"{}\", not \"{}\"",
                                            m_conn.location(), dataset, target[rows[j]], holder, batch.ids[rows[j]]));
          }
        }
      }
      ++r;
    }
  }

  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) {
    order[i] = i;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return target[a] < target[b]; });
  for (size_t j = 1; j < n; ++j) {
    if (target[order[j]] == target[order[j - 1]]) {
      throw UsageError(fmt::format("dataset \"{}\": index {} appears twice in one batch", dataset, target[order[j]]));
    }
  }
  const int64_t new_next = std::max(snap->next_index, n > 0 ? target[order.back()] + 1 : 0);
  const int64_t new_nchunks = (new_next + k_chunk_rows - 1) / k_chunk_rows;

  m_conn.append({"MULTI"});
  unwatch.disarm();  // EXEC (or its abort) ends the WATCH from here on
  // Deletes first: a moved row leaves its old slot; the HSETs below then win over any HDEL
  // of a slot this batch also writes.
  for (size_t i = 0; i < n; ++i) {
    if (old[i] && *old[i] != target[i]) {
      const std::string slot = std::to_string(slot_of(*old[i]));
      m_conn.append({"HDEL", k.rows(snap->inc, chunk_of(*old[i])), slot});
    }
  }
  std::deque<std::string> scratch;  // owns bytes that are not views of the batch
  auto blob = [&](const Array& a, size_t width, size_t first, size_t count) -> std::string_view {
    bool contiguous = true;
    for (size_t j = 1; j < count && contiguous; ++j) {
      contiguous = order[first + j] == order[first] + j;
    }
    if (contiguous) {
      return {reinterpret_cast<const char*>(a.data()) + order[first] * width, count * width};
    }
    std::string& s = scratch.emplace_back();
    s.reserve(count * width);
    for (size_t j = 0; j < count; ++j) {
      s.append(reinterpret_cast<const char*>(a.data()) + order[first + j] * width, width);
    }
    return s;
  };
  std::vector<std::string> records;
  std::vector<std::string> slot_names;
  for (size_t begin = 0; begin < n;) {
    const int64_t c = chunk_of(target[order[begin]]);
    size_t end = begin;
    while (end < n && chunk_of(target[order[end]]) == c) {
      ++end;
    }
    // Runs of consecutive indices inside the chunk: one SETRANGE each (SET for a whole chunk).
    for (size_t run = begin; run < end;) {
      size_t stop = run + 1;
      while (stop < end && target[order[stop]] == target[order[stop - 1]] + 1) {
        ++stop;
      }
      const auto count = stop - run;
      const bool whole = count == static_cast<size_t>(k_chunk_rows);
      const std::string offset = std::to_string(static_cast<size_t>(slot_of(target[order[run]])) * snap->row_bytes);
      const auto data = blob(batch.data, snap->row_bytes, run, count);
      const std::string ck = k.chunk(snap->inc, c);
      if (whole) {
        m_conn.append({"SET", ck, data});
      } else {
        m_conn.append({"SETRANGE", ck, offset, data});
      }
      if (batch.labels) {
        const auto labels = blob(*batch.labels, snap->label_bytes, run, count);
        const std::string lk = k.labels(snap->inc, c);
        const std::string loff = std::to_string(static_cast<size_t>(slot_of(target[order[run]])) * snap->label_bytes);
        if (whole) {
          m_conn.append({"SET", lk, labels});
        } else {
          m_conn.append({"SETRANGE", lk, loff, labels});
        }
      }
      scratch.clear();
      run = stop;
    }
    records.clear();
    slot_names.clear();
    const std::string rk = k.rows(snap->inc, c);
    std::vector<std::string_view> args = {"HSET", rk, "_", ""};
    for (size_t j = begin; j < end; ++j) {
      const size_t i = order[j];
      slot_names.push_back(std::to_string(slot_of(target[i])));
      records.push_back(encode_record(batch.ids[i], batch.metadata.empty() ? json() : batch.metadata[i]));
    }
    for (size_t j = 0; j < records.size(); ++j) {
      args.push_back(slot_names[j]);
      args.push_back(records[j]);
    }
    m_conn.append(args);
    begin = end;
  }
  std::vector<std::string> index_text(n);
  const std::string ids_key = k.ids(snap->inc);
  for (size_t begin = 0; begin < n; begin += k_fields_per_command) {
    std::vector<std::string_view> args = {"HSET", ids_key};
    for (size_t i = begin; i < std::min(n, begin + k_fields_per_command); ++i) {
      index_text[i] = std::to_string(target[i]);
      args.push_back(batch.ids[i]);
      args.push_back(index_text[i]);
    }
    m_conn.append(args);
  }
  // Sentinels for new chunks this batch leaves empty (a gap below an explicit index); the
  // chunks it writes got theirs in their own HSET above.
  std::set<int64_t> written_chunks;
  for (size_t i = 0; i < n; ++i) {
    written_chunks.insert(chunk_of(target[i]));
  }
  for (int64_t c = snap->nchunks; c < new_nchunks; ++c) {
    if (written_chunks.count(c) == 0) {
      m_conn.append({"HSET", k.rows(snap->inc, c), "_", ""});
    }
  }
  const std::string next_text = std::to_string(new_next);
  const std::string nchunks_text = std::to_string(new_nchunks);
  m_conn.append({"HSET", k.manifest(), "next_index", next_text, "nchunks", nchunks_text});
  m_conn.append({"HINCRBY", k.manifest(), "gen", "1"});
  m_conn.append({"SADD", m_cfg.prefix + "datasets", dataset});
  append_expire_all(k, *snap, new_nchunks);
  m_conn.append({"EXEC"});
  auto replies = m_conn.flush();
  if (!exec_ok(replies)) {
    return false;
  }
  for (size_t i = 0; i < array_size(*replies.back()); ++i) {
    m_conn.check(element(*replies.back(), i));
  }
  return true;
}

bool RowStore::update(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                      const std::optional<json>& metadata) {
  const DatasetKeys k(m_cfg, dataset);
  m_conn.append({"WATCH", k.manifest()});
  append_snapshot(k);
  Unwatch unwatch(m_conn);
  auto head = m_conn.flush();
  auto snap = parse_snapshot(dataset, *head[1]);
  if (!snap || !snap->intact) {
    throw_expired(dataset);
  }
  const auto where = lookup_ids(*snap, {id}).front();
  if (!where) {
    throw NotFoundError(fmt::format("redis {}: dataset \"{}\": id \"{}\" does not exist", m_conn.location(), dataset, id));
  }
  const int64_t c = chunk_of(*where);
  const std::string slot = std::to_string(slot_of(*where));
  auto rec = m_conn.command({"HGET", k.rows(snap->inc, c), slot});
  if (is_nil(*rec)) {
    throw_expired(dataset);
  }
  auto [rec_id, meta] = decode_record(as_view(*rec));
  std::optional<Array> row;
  if (sample) {
    Shape batch_shape = {1};
    batch_shape.insert(batch_shape.end(), snap->spec.row_shape.begin(), snap->spec.row_shape.end());
    if (sample->dtype() != snap->spec.dtype || (sample->shape() != snap->spec.row_shape && sample->shape() != batch_shape)) {
      throw UsageError(fmt::format("dataset \"{}\": holds {} rows of shape {}, got {} of shape {}", dataset,
                                   dtype_name(snap->spec.dtype), shape_to_string(snap->spec.row_shape),
                                   dtype_name(sample->dtype()), shape_to_string(sample->shape())));
    }
    row = Array(sample->dtype(), batch_shape, std::vector<std::byte>(sample->bytes().begin(), sample->bytes().end()));
    check_finite(*row, {id}, dataset);
  }
  if (metadata) {
    if (!metadata->is_object()) {
      throw UsageError(fmt::format("dataset \"{}\": row \"{}\": metadata must be a JSON object", dataset, id));
    }
    if (!meta.is_object()) {
      meta = json::object();
    }
    for (const auto& [key, value] : metadata->items()) {
      if (value.is_null()) {
        meta.erase(key);
      } else {
        meta[key] = value;
      }
    }
  }
  const std::string record = encode_record(rec_id, meta);
  m_conn.append({"MULTI"});
  unwatch.disarm();
  if (row) {
    const std::string offset = std::to_string(static_cast<size_t>(slot_of(*where)) * snap->row_bytes);
    m_conn.append({"SETRANGE", k.chunk(snap->inc, c), offset,
                   std::string_view(reinterpret_cast<const char*>(row->data()), row->nbytes())});
  }
  m_conn.append({"HSET", k.rows(snap->inc, c), slot, record});
  m_conn.append({"HINCRBY", k.manifest(), "gen", "1"});
  append_expire_all(k, *snap);
  m_conn.append({"EXEC"});
  return exec_ok(m_conn.flush());
}

std::optional<int64_t> RowStore::remove(const std::string& dataset, const Selector& select) {
  const DatasetKeys k(m_cfg, dataset);
  m_conn.append({"WATCH", k.manifest()});
  append_snapshot(k);
  Unwatch unwatch(m_conn);
  auto head = m_conn.flush();
  auto snap = parse_snapshot(dataset, *head[1]);
  if (!snap || !snap->intact) {
    throw_expired(dataset);
  }
  std::set<int64_t> victims;
  for (const auto& i : select(*snap)) {
    if (i) {
      victims.insert(*i);
    }
  }
  const std::vector<int64_t> indices(victims.begin(), victims.end());
  // Plain reads, not load(): its EXEC would end the WATCH this delete relies on.
  std::vector<std::string> ids;
  for (size_t begin = 0; begin < indices.size(); begin += k_fields_per_command) {
    const auto end = std::min(indices.size(), begin + k_fields_per_command);
    for (size_t i = begin; i < end; ++i) {
      const std::string slot = std::to_string(slot_of(indices[i]));
      m_conn.append({"HGET", k.rows(snap->inc, chunk_of(indices[i])), slot});
    }
    for (const auto& r : m_conn.flush()) {
      if (is_nil(*r)) {
        throw_expired(dataset);
      }
      ids.push_back(decode_record(as_view(*r)).first);
    }
  }
  m_conn.append({"MULTI"});
  unwatch.disarm();
  const std::string ids_key = k.ids(snap->inc);
  for (size_t begin = 0; begin < ids.size(); begin += k_fields_per_command) {
    std::vector<std::string_view> args = {"HDEL", ids_key};
    for (size_t i = begin; i < std::min(ids.size(), begin + k_fields_per_command); ++i) {
      args.push_back(ids[i]);
    }
    m_conn.append(args);
  }
  for (const auto idx : indices) {
    const std::string slot = std::to_string(slot_of(idx));
    m_conn.append({"HDEL", k.rows(snap->inc, chunk_of(idx)), slot});
  }
  m_conn.append({"HINCRBY", k.manifest(), "gen", "1"});
  append_expire_all(k, *snap);
  m_conn.append({"EXEC"});
  if (!exec_ok(m_conn.flush())) {
    return std::nullopt;
  }
  return static_cast<int64_t>(indices.size());
}

std::vector<std::optional<int64_t>> RowStore::lookup_ids(const Snapshot& snap, const std::vector<std::string>& ids) {
  const std::string key = snap.keys.ids(snap.inc);
  for (size_t begin = 0; begin < ids.size(); begin += k_fields_per_command) {
    std::vector<std::string_view> args = {"HMGET", key};
    for (size_t i = begin; i < std::min(ids.size(), begin + k_fields_per_command); ++i) {
      args.push_back(ids[i]);
    }
    m_conn.append(args);
  }
  std::vector<std::optional<int64_t>> out;
  for (const auto& r : m_conn.flush()) {
    for (size_t i = 0; i < array_size(*r); ++i) {
      const auto& e = element(*r, i);
      out.push_back(is_nil(e) ? std::nullopt : std::optional<int64_t>(as_int(e)));
    }
  }
  return out;
}

std::optional<RowBatch> RowStore::read_positions(const Snapshot& snap, const std::vector<int64_t>& positions) {
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
    m_conn.append({"HKEYS", snap.keys.rows(snap.inc, c)});
  }
  auto replies = m_conn.flush();
  std::unordered_map<int64_t, std::vector<int64_t>> slots;
  size_t r = 0;
  for (const auto c : chunks) {
    auto parsed = parse_rows_hash(*replies[r++], false);
    if (static_cast<int64_t>(parsed.size()) != snap.live[static_cast<size_t>(c)]) {
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

std::optional<RowBatch> RowStore::load(const Snapshot& snap, const std::vector<int64_t>& indices, bool values) {
  std::map<int64_t, std::vector<int64_t>> by_chunk;  // chunk -> sorted unique slots
  for (const auto idx : indices) {
    by_chunk[chunk_of(idx)].push_back(slot_of(idx));
  }
  for (auto& [c, v] : by_chunk) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  // One MULTI: gen, the records, then one GETRANGE per run of consecutive slots.
  m_conn.append({"MULTI"});
  m_conn.append({"HGET", snap.keys.manifest(), "gen"});
  std::vector<std::string> slot_text;
  for (const auto& [c, v] : by_chunk) {
    slot_text.clear();
    for (const auto s : v) {
      slot_text.push_back(std::to_string(s));
    }
    const std::string rk = snap.keys.rows(snap.inc, c);
    std::vector<std::string_view> args = {"HMGET", rk};
    args.insert(args.end(), slot_text.begin(), slot_text.end());
    m_conn.append(args);
  }
  struct Run {
    int64_t chunk, first, count;
  };
  std::vector<Run> runs;
  if (values) {
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
    for (const auto& run : runs) {
      for (const bool label : {false, true}) {
        const size_t width = label ? snap.label_bytes : snap.row_bytes;
        if (width == 0) {
          continue;
        }
        const std::string key = label ? snap.keys.labels(snap.inc, run.chunk) : snap.keys.chunk(snap.inc, run.chunk);
        const std::string a = std::to_string(static_cast<size_t>(run.first) * width);
        const std::string b = std::to_string(static_cast<size_t>(run.first + run.count) * width - 1);
        m_conn.append({"GETRANGE", key, a, b});
      }
    }
  }
  m_conn.append({"EXEC"});
  auto replies = m_conn.flush();
  const auto& exec = *replies.back();
  if (is_nil(exec) || is_nil(element(exec, 0)) || as_int(element(exec, 0)) != snap.gen) {
    if (!is_nil(exec) && is_nil(element(exec, 0))) {
      throw_expired(snap.keys.name);
    }
    return std::nullopt;
  }
  size_t e = 1;
  // (chunk, slot) -> record, sample bytes, label bytes
  struct Cell {
    std::string_view record, sample, label;
  };
  std::map<int64_t, Cell> cells;
  for (const auto& [c, v] : by_chunk) {
    const auto& r = element(exec, e++);
    for (size_t j = 0; j < v.size(); ++j) {
      const auto& rec = element(r, j);
      if (is_nil(rec)) {
        throw_expired(snap.keys.name);  // gen unchanged, so the row did not go through vstash
      }
      cells[c * k_chunk_rows + v[j]].record = as_view(rec);
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
        throw_expired(snap.keys.name);
      }
      for (int64_t j = 0; j < run.count; ++j) {
        auto& cell = cells[run.chunk * k_chunk_rows + run.first + j];
        (label ? cell.label : cell.sample) = bytes.substr(static_cast<size_t>(j) * width, width);
      }
    }
  }
  RowBatch out;
  const auto n = static_cast<int64_t>(indices.size());
  Shape shape = {n};
  shape.insert(shape.end(), snap.spec.row_shape.begin(), snap.spec.row_shape.end());
  out.data = Array(snap.spec.dtype, shape);
  if (snap.spec.label_dtype) {
    Shape ls = {n};
    ls.insert(ls.end(), snap.spec.label_shape.begin(), snap.spec.label_shape.end());
    out.labels = Array(*snap.spec.label_dtype, ls);
  }
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

std::vector<ChunkData> RowStore::read_chunks(const Snapshot& snap, int64_t first, int64_t last, bool records,
                                             bool samples) {
  for (int64_t c = first; c < last; ++c) {
    m_conn.append({records ? "HGETALL" : "HKEYS", snap.keys.rows(snap.inc, c)});
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
    if (array_size(rows) == 0) {
      throw_expired(snap.keys.name);  // not even the sentinel
    }
    d.records = parse_rows_hash(rows, records);
    if (samples) {
      const auto& blob = *replies[r++];
      d.samples = as_string(blob);
      const size_t need = d.records.empty() ? 0 : static_cast<size_t>(d.records.rbegin()->first + 1) * snap.row_bytes;
      if (d.samples.size() < need) {
        throw_expired(snap.keys.name);
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<int64_t> RowStore::matching(const Snapshot& snap, const Filter& filter) {
  std::vector<int64_t> out;
  for (int64_t first = 0; first < snap.nchunks; first += 64) {
    for (const auto& chunk : read_chunks(snap, first, std::min(snap.nchunks, first + 64), true, false)) {
      for (const auto& [slot, record] : chunk.records) {
        if (filter.matches(decode_record(record).second)) {
          out.push_back(chunk.n * k_chunk_rows + slot);
        }
      }
    }
  }
  return out;
}

bool RowStore::gen_unchanged(const Snapshot& snap) {
  auto r = m_conn.command({"HGET", snap.keys.manifest(), "gen"});
  if (is_nil(*r)) {
    throw_expired(snap.keys.name);
  }
  return as_int(*r) == snap.gen;
}

void RowStore::row_as_float(const Snapshot& snap, const std::string& samples, int64_t slot,
                            std::vector<float>& out) const {
  const char* p = samples.data() + static_cast<size_t>(slot) * snap.row_bytes;
  if (snap.spec.dtype == DType::f32) {
    std::memcpy(out.data(), p, snap.row_bytes);
    return;
  }
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(p), reinterpret_cast<const std::byte*>(p) + snap.row_bytes);
  const Array row(snap.spec.dtype, {1, snap.spec.dimension()}, std::move(bytes));
  out = row.row_as_float32(0);
}

}  // namespace vstash::backends::redis
