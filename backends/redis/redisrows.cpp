// SPDX-License-Identifier: MIT
// Chunked rows in Redis: snapshot, pipelined reads, MULTI/EXEC writes.
#include "backends/redis/redisrows.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>
#include <deque>
#include <set>
#include <unordered_map>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#include "backends/common/rowcheck.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

namespace {
// Atomic view of a dataset: manifest fields, each chunk's live count + 1 (from its records
// header; 0 when the key is gone), HLEN of the ids hash (its sentinel included) and ids_from
// (nil for a dataset written before it existed). A 0 means a key vanished, or that a chunk
// holding live rows lost its sample (or label) blob: the dataset is broken, whichever key
// expired first. {'layout'} for a dataset stored in a layout other than ARGV[2] (k_layout)
// or 2 (k_layout_v2, whose records value has the same header); the layout is the last
// element. With ARGV[3] "light", in O(1) for a writer that kept the dataset whole: no
// counts (an empty table), and an element saying whether the last chunk's records exist
// (every key's ttl was set by the same EXEC, so if one key has expired the last chunk's has too).
constexpr std::string_view k_snapshot = R"lua(
local m = redis.call('HMGET', KEYS[1], 'spec', 'inc', 'next_index', 'nchunks', 'gen', 'layout', 'ids_from')
if not m[1] then return false end
if m[6] ~= ARGV[2] and m[6] ~= '2' then return {'layout'} end
local base = ARGV[1] .. m[2] .. ':'
local n = tonumber(m[4])
if ARGV[3] == 'light' then
  local last = 1
  if n > 0 then last = redis.call('EXISTS', base .. 'rows:' .. (n - 1)) end
  return {m[1], m[2], m[3], m[4], m[5], redis.call('HLEN', base .. 'ids'), {}, m[7], last, m[6]}
end
local labels = cjson.decode(m[1])['label_dtype'] ~= nil
local counts = {}
for i = 0, n - 1 do
  local head = redis.call('GETRANGE', base .. 'rows:' .. i, 0, 2)
  local c = 0
  if #head == 3 and (string.byte(head, 1) == 84 or string.byte(head, 1) == 82) then
    c = string.byte(head, 2) + 256 * string.byte(head, 3) + 1
  end
  if c > 1 and (redis.call('EXISTS', base .. 'chunk:' .. i) == 0 or
                (labels and redis.call('EXISTS', base .. 'labels:' .. i) == 0)) then
    c = 0
  end
  counts[i + 1] = c
end
return {m[1], m[2], m[3], m[4], m[5], redis.call('HLEN', base .. 'ids'), counts, m[7], m[6]}
)lua";

uint32_t load_u32(const char* p) {
  uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

DatasetKeys::DatasetKeys(const StoreConfig& cfg, const std::string& dataset)
    : name(dataset), base(fmt::format("{}ds:{{{}}}:", cfg.prefix, key_escape(dataset))) {}

json spec_to_json(const DatasetSpec& s) {
  json j = {{"dtype", dtype_name(s.dtype)},
            {"row_shape", s.row_shape},
            {"metric", metric_name(s.metric)},
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

std::string encode_chunk_records(const std::vector<std::pair<int64_t, std::string_view>>& records) {
  size_t size = k_records_data;
  for (const auto& [slot, record] : records) {
    size += record.size();
  }
  std::string out(k_records_data, '\0');
  out.reserve(size);
  const auto count = static_cast<uint16_t>(records.size());
  out[0] = 'T';
  out[1] = static_cast<char>(count & 0xff);
  out[2] = static_cast<char>(count >> 8);
  // records come in slot order; a slot without one repeats the previous end
  size_t next = 0;
  uint32_t end = 0;
  for (int64_t s = 0; s < k_chunk_rows; ++s) {
    if (next < records.size() && records[next].first == s) {
      out.append(records[next].second);
      end += static_cast<uint32_t>(records[next].second.size());
      ++next;
    }
    std::memcpy(out.data() + k_records_table + 4 * static_cast<size_t>(s), &end, sizeof end);
  }
  return out;
}

ChunkRecords decode_chunk_records(std::string_view blob) {
  if (blob.size() < 3 || (blob[0] != 'R' && blob[0] != 'T')) {
    throw Error("redis: corrupt chunk records (bad header)");
  }
  const auto count = static_cast<size_t>(static_cast<unsigned char>(blob[1])) |
                     static_cast<size_t>(static_cast<unsigned char>(blob[2])) << 8;
  ChunkRecords out;
  if (blob[0] == 'T') {
    if (blob.size() < k_records_data) {
      throw Error("redis: corrupt chunk records (truncated)");
    }
    uint32_t begin = 0;
    for (int64_t s = 0; s < k_chunk_rows; ++s) {
      const uint32_t end = load_u32(blob.data() + k_records_table + 4 * static_cast<size_t>(s));
      if (end < begin || k_records_data + end > blob.size()) {
        throw Error("redis: corrupt chunk records (record overruns the value)");
      }
      if (end > begin) {
        out.emplace(s, std::string(blob.substr(k_records_data + begin, end - begin)));
      }
      begin = end;
    }
    if (out.size() != count || k_records_data + begin != blob.size()) {
      throw Error("redis: corrupt chunk records (count does not match)");
    }
    return out;
  }
  size_t at = 3;
  for (size_t i = 0; i < count; ++i) {
    uint32_t n = 0;
    if (blob.size() < at + 5) {
      throw Error("redis: corrupt chunk records (truncated)");
    }
    const auto slot = static_cast<int64_t>(static_cast<unsigned char>(blob[at]));
    std::memcpy(&n, blob.data() + at + 1, sizeof n);
    at += 5;
    if (blob.size() < at + n) {
      throw Error("redis: corrupt chunk records (record overruns the value)");
    }
    out.emplace(slot, std::string(blob.substr(at, n)));
    at += n;
  }
  return out;
}

std::string encode_chunk_records(const ChunkRecords& records) {
  std::vector<std::pair<int64_t, std::string_view>> list(records.begin(), records.end());
  return encode_chunk_records(list);
}

void RowStore::append_snapshot(const DatasetKeys& keys, bool light) {
  m_conn.append({"EVAL", k_snapshot, "1", keys.manifest(), keys.base, k_layout, light ? "light" : "full"});
}

void RowStore::settle_snapshot(CommitTurn& turn, const DatasetKeys& keys, std::optional<Snapshot>& snap) {
  auto trusted = [&] {
    if (!snap || !snap->intact) {
      return true;  // nothing to trust or distrust: the caller acts on "broken"
    }
    if (snap->light && snap->layout != k_layout && snap->nchunks > 0) {
      return false;  // migrate_layout needs every chunk's count
    }
    if (!snap->light || snap->nchunks == 0) {
      turn.saw_whole(snap->inc, snap->gen);
      return true;
    }
    return turn.whole_at(snap->inc, snap->gen);
  };
  if (!trusted()) {
    append_snapshot(keys);
    snap = parse_snapshot(keys.name, *m_conn.flush().front());
    trusted();
  }
}

std::optional<Snapshot> RowStore::parse_snapshot(const std::string& dataset, const redisReply& r) const {
  if (is_nil(r)) {
    return std::nullopt;
  }
  if (array_size(r) == 1) {
    throw Error(
        fmt::format("redis {}: dataset \"{}\" was stored by an older vstash in another layout; remove its "
                    "keys ({}*) and ingest it again",
                    m_conn.location(), dataset, DatasetKeys(m_cfg, dataset).base));
  }
  Snapshot s{DatasetKeys(m_cfg, dataset),         {},    {}, 0, 0, 0, 0, {}, true, 0, 0,
             std::numeric_limits<int64_t>::max(), false, {}};
  s.layout = as_string(element(r, array_size(r) - 1));
  s.spec = spec_from_json(dataset, json::parse(as_view(element(r, 0))));
  s.inc = as_string(element(r, 1));
  s.next_index = as_int(element(r, 2));
  s.nchunks = as_int(element(r, 3));
  s.gen = as_int(element(r, 4));
  s.intact = as_int(element(r, 5)) >= 1;  // the ids hash's sentinel
  if (array_size(r) > 9) {
    s.light = true;
    s.rows = s.nchunks == 0 ? 0 : -1;
    s.intact = s.intact && as_int(element(r, 8)) == 1;
  }
  const auto& counts = element(r, 6);
  for (size_t i = 0; i < array_size(counts); ++i) {
    const int64_t c = as_int(element(counts, i));
    s.intact = s.intact && c >= 1;
    s.live.push_back(std::max<int64_t>(c - 1, 0));
    s.rows += s.live.back();
  }
  if (!is_nil(element(r, 7))) {
    s.ids_from = as_int(element(r, 7));
  }
  s.intact = s.intact && (s.light || static_cast<int64_t>(s.live.size()) == s.nchunks);
  s.row_bytes = static_cast<size_t>(s.spec.dimension()) * dtype_size(s.spec.dtype);
  s.label_bytes =
      s.spec.label_dtype ? static_cast<size_t>(shape_product(s.spec.label_shape)) * dtype_size(*s.spec.label_dtype) : 0;
  return s;
}

RowStore::Watched::Watched(RowStore& store, const DatasetKeys& k, StagedChunks* staged, bool light)
    : m_turn(commit_turn(store.m_conn.location(), k.manifest())), m_lock(m_turn.mutex), m_unwatch(store.m_conn) {
  const size_t first = store.m_conn.pending();  // the staged SETs' replies come first
  store.m_conn.append({"WATCH", k.manifest()});
  store.append_snapshot(k, light);
  if (staged != nullptr) {
    staged->append_watch();
  }
  const auto replies = store.m_conn.flush();
  if (staged != nullptr && staged->staged()) {
    staged->check_watched(*replies.back());
  }
  m_snap = store.parse_snapshot(k.name, *replies[first + 1]);
  store.settle_snapshot(m_turn, k, m_snap);
  if (!m_snap || !m_snap->intact) {
    store.throw_expired(k.name);
  }
}

void RowStore::throw_expired(const std::string& dataset) const {
  commit_turn(m_conn.location(), DatasetKeys(m_cfg, dataset).manifest()).forget_whole();
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
  append_expire(m_conn, m_cfg, k.live(snap.inc));
  append_expire(m_conn, m_cfg, m_cfg.prefix + "datasets");
  for (int64_t n = 0; n < (nchunks < 0 ? snap.nchunks : nchunks); ++n) {
    append_expire(m_conn, m_cfg, k.rows(snap.inc, n));
    append_expire(m_conn, m_cfg, k.chunk(snap.inc, n));
    if (snap.label_bytes > 0) {
      append_expire(m_conn, m_cfg, k.labels(snap.inc, n));
    }
  }
}

bool RowStore::update(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                      const std::optional<json>& metadata) {
  const DatasetKeys k(m_cfg, dataset);
  Watched watched(*this, k);
  Snapshot& snap = watched.snap();
  if (snap.layout != k_layout) {
    migrate_layout(snap);
    return false;  // again, in layout 3
  }
  IdsCatchUp catch_up;
  const auto where = lookup_ids(snap, {id}, &catch_up).front();
  if (!where) {
    throw NotFoundError(
        fmt::format("redis {}: dataset \"{}\": id \"{}\" does not exist", m_conn.location(), dataset, id));
  }
  const int64_t c = chunk_of(*where);
  auto blob = m_conn.command({"GET", k.rows(snap.inc, c)});
  if (is_nil(*blob)) {
    throw_expired(dataset);
  }
  auto records = decode_chunk_records(as_view(*blob));
  const auto rec = records.find(slot_of(*where));
  if (rec == records.end()) {
    throw_expired(dataset);  // the ids hash names a slot its chunk does not hold
  }
  auto [rec_id, meta] = decode_record(rec->second);
  std::optional<Array> row;
  if (sample) {
    Shape batch_shape = {1};
    batch_shape.insert(batch_shape.end(), snap.spec.row_shape.begin(), snap.spec.row_shape.end());
    if (sample->dtype() != snap.spec.dtype ||
        (sample->shape() != snap.spec.row_shape && sample->shape() != batch_shape)) {
      throw UsageError(fmt::format("dataset \"{}\": holds {} rows of shape {}, got {} of shape {}", dataset,
                                   dtype_name(snap.spec.dtype), shape_to_string(snap.spec.row_shape),
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
  rec->second = encode_record(rec_id, meta);
  const std::string value = encode_chunk_records(records);
  m_conn.append({"MULTI"});
  watched.disarm();
  if (row) {
    const std::string offset = std::to_string(static_cast<size_t>(slot_of(*where)) * snap.row_bytes);
    m_conn.append({"SETRANGE", k.chunk(snap.inc, c), offset,
                   std::string_view(reinterpret_cast<const char*>(row->data()), row->nbytes())});
  }
  m_conn.append({"SET", k.rows(snap.inc, c), value});
  append_ids_catch_up(k, snap, catch_up);
  m_conn.append({"HINCRBY", k.manifest(), "gen", "1"});
  append_expire_all(k, snap);
  m_conn.append({"EXEC"});
  if (!exec_ok(m_conn.flush())) {
    return false;
  }
  watched.turn().ids_unchanged(snap.inc, snap.gen);
  return true;
}

std::optional<int64_t> RowStore::remove(const std::string& dataset, const Selector& select) {
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
  // Plain reads, not load(): its EXEC would end the WATCH this delete relies on.
  std::map<int64_t, ChunkRecords> chunks;
  for (const auto idx : indices) {
    chunks.emplace(chunk_of(idx), ChunkRecords());
  }
  for (const auto& [c, unused] : chunks) {
    m_conn.append({"GET", k.rows(snap.inc, c)});
  }
  if (!chunks.empty()) {
    auto replies = m_conn.flush();
    size_t r = 0;
    for (auto& [c, records] : chunks) {
      const auto& reply = *replies[r++];
      if (is_nil(reply)) {
        throw_expired(dataset);
      }
      records = decode_chunk_records(as_view(reply));
    }
  }
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
  m_conn.append({"MULTI"});
  watched.disarm();
  append_ids_catch_up(k, snap, catch_up);  // first: the HDELs below apply to it
  const std::string ids_key = k.ids(snap.inc);
  for (size_t begin = 0; begin < ids.size(); begin += k_fields_per_command) {
    std::vector<std::string_view> args = {"HDEL", ids_key};
    for (size_t i = begin; i < std::min(ids.size(), begin + k_fields_per_command); ++i) {
      args.push_back(ids[i]);
    }
    m_conn.append(args);
  }
  std::map<int64_t, int64_t> counts;
  for (const auto& [c, records] : chunks) {
    m_conn.append({"SET", k.rows(snap.inc, c), encode_chunk_records(records)});
    counts[c] = static_cast<int64_t>(records.size());
  }
  append_live(k, snap, counts);
  if (!indices.empty()) {
    m_conn.append({"HINCRBY", k.manifest(), "rows", std::to_string(-static_cast<int64_t>(indices.size()))});
  }
  m_conn.append({"HINCRBY", k.manifest(), "gen", "1"});
  append_expire_all(k, snap);
  m_conn.append({"EXEC"});
  if (!exec_ok(m_conn.flush())) {
    return std::nullopt;
  }
  // The deleted ids stay in KnownIds: a "maybe" there only costs a lookup.
  watched.turn().ids_unchanged(snap.inc, snap.gen);
  return static_cast<int64_t>(indices.size());
}

std::vector<std::optional<int64_t>> RowStore::lookup_ids(const Snapshot& snap, const std::vector<std::string>& ids,
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
      throw_expired(snap.keys.name);
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

void RowStore::append_index_fields(const DatasetKeys& k, const Snapshot& snap,
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

void RowStore::append_ids_catch_up(const DatasetKeys& k, const Snapshot& snap, const IdsCatchUp& catch_up) {
  if (catch_up.upto < 0) {
    return;
  }
  append_index_fields(k, snap, {catch_up.entries.begin(), catch_up.entries.end()});
  m_conn.append({"HSET", k.manifest(), "ids_from", std::to_string(catch_up.upto)});
}

bool RowStore::index_ids(const std::string& dataset) {
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

void RowStore::append_live(const DatasetKeys& k, const Snapshot& snap, const std::map<int64_t, int64_t>& counts) {
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

bool RowStore::migrate_layout(const Snapshot& snap) {
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

std::optional<Snapshot> RowStore::head(const std::string& dataset) {
  const DatasetKeys k(m_cfg, dataset);
  auto r = m_conn.command({"HMGET", k.manifest(), "spec", "inc", "next_index", "nchunks", "gen", "layout", "rows"});
  if (is_nil(element(*r, 0))) {
    return std::nullopt;
  }
  Snapshot s{k, {}, {}, 0, 0, 0, 0, {}, true, 0, 0, std::numeric_limits<int64_t>::max(), false, {}};
  s.layout = is_nil(element(*r, 5)) ? std::string() : as_string(element(*r, 5));
  if (s.layout != k_layout && s.layout != k_layout_v2) {
    throw Error(
        fmt::format("redis {}: dataset \"{}\" was stored by an older vstash in another layout; remove its "
                    "keys ({}*) and ingest it again",
                    m_conn.location(), dataset, k.base));
  }
  s.spec = spec_from_json(dataset, json::parse(as_view(element(*r, 0))));
  s.inc = as_string(element(*r, 1));
  s.next_index = as_int(element(*r, 2));
  s.nchunks = as_int(element(*r, 3));
  s.gen = as_int(element(*r, 4));
  s.rows = is_nil(element(*r, 6)) ? -1 : as_int(element(*r, 6));
  s.light = true;
  s.row_bytes = static_cast<size_t>(s.spec.dimension()) * dtype_size(s.spec.dtype);
  s.label_bytes =
      s.spec.label_dtype ? static_cast<size_t>(shape_product(s.spec.label_shape)) * dtype_size(*s.spec.label_dtype) : 0;
  return s;
}

std::optional<Snapshot> RowStore::cached_head(const std::string& dataset) const {
  if (m_read_cache && m_read_cache->head.keys.name == dataset) {
    return m_read_cache->head;
  }
  return std::nullopt;
}

void RowStore::forget_reads() { m_read_cache.reset(); }

std::optional<RowBatch> RowStore::read_fast(const Snapshot& h, const std::vector<int64_t>& positions, bool records) {
  const DatasetKeys& k = h.keys;
  constexpr size_t k_round_head = 2;  // a round's replies before its reads: HMGET, EXISTS
  if (!m_read_cache || m_read_cache->head.keys.name != h.keys.name || m_read_cache->head.inc != h.inc ||
      m_read_cache->head.gen != h.gen) {
    m_read_cache.emplace(ReadCache{h, {}, {}, false});
  }
  ReadCache& cache = *m_read_cache;
  // Every round trip is one MULTI that starts by re-reading gen and inc: the same gen as the
  // head's means no write has committed since (each bumps it in its EXEC), so what the rounds
  // read, and the offset tables and counts cached at this gen, are one state of the dataset.
  // The ids hash and the live counts are checked too (O(1)): a vanished key of the dataset
  // that a read touches is "expired or not found", never a partial row.
  auto begin_round = [&] {
    m_conn.append({"MULTI"});
    m_conn.append({"HMGET", k.manifest(), "gen", "inc"});
    m_conn.append({"EXISTS", k.ids(h.inc), k.live(h.inc)});
  };
  // The EXEC's reply, or nullptr when a write moved gen (the cache is then dropped).
  std::vector<Reply> replies;
  auto end_round = [&]() -> const redisReply* {
    m_conn.append({"EXEC"});
    replies = m_conn.flush();
    const auto& exec = *replies.back();
    if (is_nil(exec)) {
      m_read_cache.reset();
      return nullptr;
    }
    const auto& g = element(exec, 0);
    if (is_nil(element(g, 0))) {
      m_read_cache.reset();
      throw_expired(k.name);
    }
    if (as_int(element(g, 0)) != h.gen || as_view(element(g, 1)) != h.inc) {
      m_read_cache.reset();
      return nullptr;
    }
    if (as_int(element(exec, 1)) != 2) {
      m_read_cache.reset();
      throw_expired(k.name);
    }
    return &exec;
  };
  // The offset tables of these chunks, read once per (inc, gen) and kept.
  auto need_tables = [&](const std::set<int64_t>& chunks) -> bool {
    std::vector<int64_t> missing;
    for (const auto c : chunks) {
      if (cache.tables.count(c) == 0) {
        missing.push_back(c);
      }
    }
    if (missing.empty()) {
      return true;
    }
    if (cache.tables.size() + missing.size() > k_cached_tables_max) {
      cache.tables.clear();  // memory stays bounded: a huge dataset reads its tables again
    }
    begin_round();
    for (const auto c : missing) {
      m_conn.append({"GETRANGE", k.rows(h.inc, c), "0", std::to_string(k_records_data - 1)});
    }
    const redisReply* exec = end_round();
    if (exec == nullptr) {
      return false;
    }
    for (size_t j = 0; j < missing.size(); ++j) {
      const auto table = as_view(element(*exec, k_round_head + j));
      if (table.size() != k_records_data || table[0] != 'T') {
        m_read_cache.reset();
        throw_expired(k.name);
      }
      cache.tables.emplace(missing[j], std::string(table.substr(k_records_table)));
    }
    return true;
  };
  // End offset of slot s in a cached table (-1: before slot 0).
  auto end_of = [&](const std::string& table, int64_t s) -> uint32_t {
    return s < 0 ? 0 : load_u32(table.data() + 4 * static_cast<size_t>(s));
  };

  std::vector<int64_t> indices = positions;
  if (h.rows != h.next_index) {
    // Rows were deleted: a position is a rank among the live rows. The live counts (2 bytes
    // per chunk) give the chunk, the chunk's offset table the slot.
    if (!cache.have_live) {
      begin_round();
      m_conn.append({"GET", k.live(h.inc)});
      const redisReply* exec = end_round();
      if (exec == nullptr) {
        return std::nullopt;
      }
      const auto live = as_view(element(*exec, k_round_head));
      if (is_nil(element(*exec, k_round_head)) || live.size() < 2 * static_cast<size_t>(h.nchunks)) {
        m_read_cache.reset();
        throw_expired(k.name);
      }
      cache.cumulative.assign(static_cast<size_t>(h.nchunks) + 1, 0);
      for (size_t c = 0; c < static_cast<size_t>(h.nchunks); ++c) {
        cache.cumulative[c + 1] =
            cache.cumulative[c] + (static_cast<unsigned char>(live[2 * c]) |
                                   static_cast<int64_t>(static_cast<unsigned char>(live[2 * c + 1])) << 8);
      }
      cache.have_live = true;
    }
    const auto& cumulative = cache.cumulative;
    std::set<int64_t> chunks;
    std::vector<std::pair<int64_t, int64_t>> where;  // (chunk, rank)
    for (const auto p : positions) {
      const auto c =
          static_cast<int64_t>(std::upper_bound(cumulative.begin(), cumulative.end(), p) - cumulative.begin()) - 1;
      if (c < 0 || c >= h.nchunks) {
        m_read_cache.reset();
        return std::nullopt;  // beyond the live rows: a stale head
      }
      where.emplace_back(c, p - cumulative[static_cast<size_t>(c)]);
      chunks.insert(c);
    }
    if (!need_tables(chunks)) {
      return std::nullopt;
    }
    std::map<int64_t, std::vector<int64_t>> slots;  // chunk -> its live slots
    for (const auto c : chunks) {
      auto& v = slots[c];
      const std::string& table = cache.tables.at(c);
      for (int64_t s = 0; s < k_chunk_rows; ++s) {
        if (end_of(table, s) > end_of(table, s - 1)) {
          v.push_back(s);
        }
      }
    }
    for (size_t i = 0; i < where.size(); ++i) {
      const auto& v = slots[where[i].first];
      if (where[i].second >= static_cast<int64_t>(v.size())) {
        m_read_cache.reset();
        throw_expired(k.name);  // the counts disagree with the table at one gen
      }
      indices[i] = where[i].first * k_chunk_rows + v[static_cast<size_t>(where[i].second)];
    }
  } else {
    std::set<int64_t> chunks;
    for (const auto idx : indices) {
      chunks.insert(chunk_of(idx));
    }
    if (!need_tables(chunks)) {
      return std::nullopt;
    }
  }
  // One round: per run of consecutive indices in one chunk (a read_rows range; single rows
  // when shuffled), one GETRANGE each for the records (bounds from the cached table), the
  // samples and the labels.
  struct Run {
    size_t first;  // into indices
    size_t count;
    int64_t chunk, slot;
    uint32_t begin, end;  // the run's records in the chunk's data
  };
  std::vector<Run> runs;
  const size_t n = indices.size();
  for (size_t i = 0; i < n;) {
    size_t e = i + 1;
    while (e < n && indices[e] == indices[e - 1] + 1 && chunk_of(indices[e]) == chunk_of(indices[i])) {
      ++e;
    }
    const int64_t c = chunk_of(indices[i]);
    const std::string& table = cache.tables.at(c);
    runs.push_back({i, e - i, c, slot_of(indices[i]), end_of(table, slot_of(indices[i]) - 1),
                    end_of(table, slot_of(indices[e - 1]))});
    i = e;
  }
  // The last round is a plain pipeline, not a MULTI (whose QUEUED reply per command cost the
  // server and the client as much as the reads): it checks the keys, reads, then reads gen
  // and inc again. Every write bumps gen in the EXEC that changes the dataset's keys, so gen
  // still head's after the reads means none committed between head and them (a seqlock):
  // the reads, and the tables cached at that gen, saw one state of the dataset.
  m_conn.append({"EXISTS", k.ids(h.inc), k.live(h.inc)});
  // Keys are built in place from their prefixes (k.rows(inc, n) etc.): a shuffled batch
  // names hundreds of them.
  const std::string pre = k.base + h.inc + ":";
  std::string key;
  auto key_of = [&](std::string_view kind, int64_t chunk) -> const std::string& {
    key.assign(pre).append(kind).append(std::to_string(chunk));
    return key;
  };
  for (const auto& r : runs) {
    const auto s = static_cast<size_t>(r.slot);
    if (records) {
      m_conn.append({"GETRANGE", key_of("rows:", r.chunk), std::to_string(k_records_data + r.begin),
                     std::to_string(static_cast<int64_t>(k_records_data + r.end) - 1)});
    }
    m_conn.append({"GETRANGE", key_of("chunk:", r.chunk), std::to_string(s * h.row_bytes),
                   std::to_string((s + r.count) * h.row_bytes - 1)});
    if (h.label_bytes > 0) {
      m_conn.append({"GETRANGE", key_of("labels:", r.chunk), std::to_string(s * h.label_bytes),
                     std::to_string((s + r.count) * h.label_bytes - 1)});
    }
  }
  m_conn.append({"HMGET", k.manifest(), "gen", "inc"});
  const auto read = m_conn.flush();
  const auto& g = *read.back();
  if (is_nil(element(g, 0))) {
    m_read_cache.reset();
    throw_expired(k.name);
  }
  if (as_int(element(g, 0)) != h.gen || as_view(element(g, 1)) != h.inc) {
    m_read_cache.reset();
    return std::nullopt;  // a write committed since head: read again
  }
  if (as_int(*read.front()) != 2) {
    m_read_cache.reset();
    throw_expired(k.name);
  }
  RowBatch out;
  Shape shape = {static_cast<int64_t>(n)};
  shape.insert(shape.end(), h.spec.row_shape.begin(), h.spec.row_shape.end());
  out.data = Array(h.spec.dtype, shape);
  if (h.spec.label_dtype) {
    Shape ls = {static_cast<int64_t>(n)};
    ls.insert(ls.end(), h.spec.label_shape.begin(), h.spec.label_shape.end());
    out.labels = Array(*h.spec.label_dtype, ls);
  }
  out.ids.resize(n);
  out.metadata.resize(n);
  out.indices = indices;
  const size_t per_run = (h.label_bytes > 0 ? 2 : 1) + (records ? 1 : 0);
  for (size_t j = 0; j < runs.size(); ++j) {
    const Run& r = runs[j];
    const size_t e = 1 + j * per_run + (records ? 1 : 0);  // the run's samples (after EXISTS)
    const auto samples = as_view(*read[e]);
    const auto blob = records ? as_view(*read[e - 1]) : std::string_view();
    if (r.end < r.begin || (records && blob.size() != r.end - r.begin) || samples.size() != r.count * h.row_bytes) {
      m_read_cache.reset();
      throw_expired(k.name);
    }
    const std::string& table = cache.tables.at(r.chunk);
    for (size_t i = 0; i < r.count; ++i) {
      const int64_t s = r.slot + static_cast<int64_t>(i);
      const uint32_t from = end_of(table, s - 1);
      const uint32_t to = end_of(table, s);
      if (to <= from) {
        m_read_cache.reset();
        throw_expired(k.name);  // no record at one gen: the row did not go through vstash
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
      if (labels.size() != r.count * h.label_bytes) {
        m_read_cache.reset();
        throw_expired(k.name);
      }
      std::memcpy(out.labels->row(static_cast<int64_t>(r.first)).data(), labels.data(), labels.size());
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

std::optional<RowBatch> RowStore::load(const Snapshot& snap, const std::vector<int64_t>& indices, bool values) {
  std::map<int64_t, std::vector<int64_t>> by_chunk;  // chunk -> sorted unique slots
  for (const auto idx : indices) {
    by_chunk[chunk_of(idx)].push_back(slot_of(idx));
  }
  for (auto& [c, v] : by_chunk) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  // One MULTI: gen, the chunks' records, then one GETRANGE per run of consecutive slots.
  m_conn.append({"MULTI"});
  m_conn.append({"HGET", snap.keys.manifest(), "gen"});
  for (const auto& [c, v] : by_chunk) {
    m_conn.append({"GET", snap.keys.rows(snap.inc, c)});
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
  std::deque<ChunkRecords> chunk_records;  // owns what cells' records view
  for (const auto& [c, v] : by_chunk) {
    const auto& r = element(exec, e++);
    if (is_nil(r)) {
      throw_expired(snap.keys.name);
    }
    const auto& records = chunk_records.emplace_back(decode_chunk_records(as_view(r)));
    for (const auto slot : v) {
      const auto rec = records.find(slot);
      if (rec == records.end()) {
        throw_expired(snap.keys.name);  // gen unchanged, so the row did not go through vstash
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
      throw_expired(snap.keys.name);
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
        throw_expired(snap.keys.name);
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

void RowStore::read_labels(const Snapshot& snap, std::vector<ChunkData>& chunks) {
  for (const auto& d : chunks) {
    m_conn.append({"GET", snap.keys.labels(snap.inc, d.n)});
  }
  auto replies = m_conn.flush();
  for (size_t i = 0; i < chunks.size(); ++i) {
    auto& d = chunks[i];
    d.labels = is_nil(*replies[i]) ? std::string() : as_string(*replies[i]);
    const size_t need = d.records.empty() ? 0 : static_cast<size_t>(d.records.rbegin()->first + 1) * snap.label_bytes;
    if (d.labels.size() < need) {
      throw_expired(snap.keys.name);
    }
  }
}

json RowStore::label_of(const Snapshot& snap, const ChunkData& chunk, int64_t slot, const Filter& filter) const {
  if (!filter.uses_label()) {
    return nullptr;
  }
  return label_value(*snap.spec.label_dtype, reinterpret_cast<const std::byte*>(chunk.labels.data()) +
                                                 static_cast<size_t>(slot) * snap.label_bytes);
}

std::vector<int64_t> RowStore::matching(const Snapshot& snap, const Filter& filter) {
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
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(p),
                               reinterpret_cast<const std::byte*>(p) + snap.row_bytes);
  const Array row(snap.spec.dtype, {1, snap.spec.dimension()}, std::move(bytes));
  out = row.row_as_float32(0);
}

}  // namespace vstash::backends::redis
