// SPDX-License-Identifier: MIT
// A dataset's state as one atomic read: the snapshot script, the manifest alone (head),
// the WATCH that starts every mutation, and the "not found" and "expired" answers.
#include <fmt/format.h>
#include <algorithm>
#include <limits>

#include "backends/common/catalog.hpp"
#include "backends/redis/redisrows.hpp"
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
// A sharded dataset (manifest field shards > 1, chunks in other slots, which a script cannot
// read) answers from its own slot: the counts from the live key, whether the version map is
// whole, the map itself, S and the mode; its chunks are checked by the reads that use them.
// With ARGV[4] and ARGV[5] (a light snapshot for a write, VersionBound's add and hi) and the
// map whole, it also takes the write's version as ChunkVersions::allocate's script does (INCR
// of vseq, the pending entry with its chunk bound) and answers it before the layout, else 0.
constexpr std::string_view k_snapshot = R"lua(
local m = redis.call('HMGET', KEYS[1], 'spec', 'inc', 'next_index', 'nchunks', 'gen', 'layout', 'ids_from', 'shards')
if not m[1] then return false end
if m[6] ~= ARGV[2] and m[6] ~= '2' then return {'layout'} end
local base = ARGV[1] .. m[2] .. ':'
local n = tonumber(m[4])
if m[8] and tonumber(m[8]) > 1 then
  local vers = redis.call('GET', base .. 'vers')
  local ok = 1
  if not vers or #vers < 4 * n then ok = 0; vers = '' end
  local v = 0
  if ARGV[5] and ok == 1 and ARGV[3] == 'light' then
    local rows = math.max(tonumber(m[3]) + tonumber(ARGV[4]), tonumber(ARGV[5]))
    v = redis.call('INCR', base .. 'vseq') % 4294967296
    if v == 0 then v = redis.call('INCR', base .. 'vseq') % 4294967296 end
    redis.call('HSET', base .. 'pending', v, math.ceil(rows / 256))
  end
  local counts = {}
  if ARGV[3] ~= 'light' then
    local live = redis.call('GET', base .. 'live') or ''
    for i = 0, n - 1 do
      local c = 0
      if #live >= 2 * i + 2 then c = string.byte(live, 2 * i + 1) + 256 * string.byte(live, 2 * i + 2) + 1 end
      counts[i + 1] = c
    end
  end
  return {m[1], m[2], m[3], m[4], m[5], redis.call('HLEN', base .. 'ids'), counts, m[7], ok, vers, m[8], ARGV[3], v, m[6]}
end
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

}  // namespace

DatasetSpec DatasetRows::stored_spec(const std::string& dataset, const redisReply& text) const {
  return catalog::spec_from_json(dataset, json::parse(as_view(text), nullptr, false),
                                 fmt::format("{}: dataset \"{}\"", location(), dataset));
}

void DatasetRows::append_snapshot(const DatasetKeys& keys, bool light, const VersionBound* bound) {
  if (light && bound != nullptr) {
    const std::string add = std::to_string(bound->add);
    const std::string hi = std::to_string(bound->hi);
    m_conn.append({"EVAL", k_snapshot, "1", keys.manifest(), keys.base, k_layout, "light", add, hi});
    return;
  }
  m_conn.append({"EVAL", k_snapshot, "1", keys.manifest(), keys.base, k_layout, light ? "light" : "full"});
}

void DatasetRows::settle_snapshot(CommitTurn& turn, const DatasetKeys& keys, std::optional<Snapshot>& snap) {
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

std::optional<Snapshot> DatasetRows::parse_snapshot(const std::string& dataset, const redisReply& r) const {
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
  s.spec = stored_spec(dataset, element(r, 0));
  s.inc = as_string(element(r, 1));
  s.next_index = as_int(element(r, 2));
  s.nchunks = as_int(element(r, 3));
  s.gen = as_int(element(r, 4));
  s.intact = as_int(element(r, 5)) >= 1;  // the ids hash's sentinel
  if (array_size(r) == 14) {              // sharded
    s.keys.shards = as_int(element(r, 10));
    s.version = static_cast<uint32_t>(as_int(element(r, 12)));
    s.keys.versions = decode_versions(as_view(element(r, 9)), s.nchunks);
    s.light = as_view(element(r, 11)) == "light";
    s.rows = s.light && s.nchunks > 0 ? -1 : 0;
    s.intact = s.intact && as_int(element(r, 8)) == 1;
  } else if (array_size(r) > 9) {
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

DatasetRows::Watched::Watched(DatasetRows& store, const DatasetKeys& k, StagedChunks* staged, bool light,
                              const VersionBound* bound)
    : m_turn(commit_turn(store.m_conn.location(), k.manifest())), m_lock(m_turn.mutex), m_unwatch(store.m_conn) {
  const size_t first = store.m_conn.pending();  // the staged SETs' replies come first
  store.m_conn.append({"WATCH", k.manifest()});
  store.append_snapshot(k, light, bound);
  if (staged != nullptr) {
    staged->append_watch();
  }
  const auto replies = store.m_conn.flush();
  if (staged != nullptr && staged->staged()) {
    staged->check_watched(*replies.back());
  }
  m_snap = store.parse_snapshot(k.name, *replies[first + 1]);
  const uint32_t version = m_snap ? m_snap->version : 0;
  store.settle_snapshot(m_turn, k, m_snap);
  if (m_snap) {
    m_snap->version = version;  // still pending, whichever snapshot settled
  }
  store.require_intact(k.name, m_snap);
  m_turn.shards.store(m_snap->shards());
}

void DatasetRows::throw_expired(const std::string& dataset) const {
  commit_turn(m_conn.location(), DatasetKeys(m_cfg, dataset).manifest()).forget_whole();
  throw NotFoundError(fmt::format("{}: dataset \"{}\": expired or not found", location(), dataset));
}

void DatasetRows::throw_not_found(const std::string& dataset) const {
  commit_turn(m_conn.location(), DatasetKeys(m_cfg, dataset).manifest()).forget_whole();
  throw catalog::dataset_not_found(location(), dataset);
}

void DatasetRows::require_intact(const std::string& dataset, const std::optional<Snapshot>& snap) const {
  if (!snap) {
    throw_not_found(dataset);
  }
  if (!snap->intact) {
    throw_expired(dataset);
  }
}

Snapshot DatasetRows::require(const std::string& dataset) {
  append_snapshot(DatasetKeys(m_cfg, dataset));
  auto snap = parse_snapshot(dataset, *m_conn.flush().front());
  require_intact(dataset, snap);
  return std::move(*snap);
}

void DatasetRows::append_expire_all(const DatasetKeys& k, const Snapshot& snap, int64_t nchunks) {
  if (m_cfg.ttl <= 0) {
    return;
  }
  append_expire(m_conn, m_cfg, k.manifest());
  append_expire(m_conn, m_cfg, k.ids(snap.inc));
  append_expire(m_conn, m_cfg, k.live(snap.inc));
  append_expire(m_conn, m_cfg, m_cfg.prefix + "datasets");
  if (snap.shards() > 1) {
    // The current versions; the new ones a commit writes were given the ttl by ChunkVersions.
    append_expire(m_conn, m_cfg, k.vers(snap.inc));
    append_expire(m_conn, m_cfg, k.vseq(snap.inc));
    append_expire(m_conn, m_cfg, k.pending(snap.inc));
    nchunks = std::min(nchunks < 0 ? snap.nchunks : nchunks, snap.nchunks);
  }
  for (int64_t n = 0; n < (nchunks < 0 ? snap.nchunks : nchunks); ++n) {
    append_expire(m_conn, m_cfg, snap.keys.rows(snap.inc, n));
    append_expire(m_conn, m_cfg, snap.keys.chunk(snap.inc, n));
    if (snap.label_bytes > 0) {
      append_expire(m_conn, m_cfg, snap.keys.labels(snap.inc, n));
    }
  }
}

std::optional<Snapshot> DatasetRows::head(const std::string& dataset) {
  const DatasetKeys k(m_cfg, dataset);
  auto r = m_conn.command(
      {"HMGET", k.manifest(), "spec", "inc", "next_index", "nchunks", "gen", "layout", "rows", "shards"});
  if (is_nil(element(*r, 0))) {
    return std::nullopt;
  }
  const redisReply* fields = r.get();
  std::vector<Reply> sharded;
  std::string vers;
  if (!is_nil(element(*r, 7)) && as_int(element(*r, 7)) > 1) {
    // The manifest and the version map of one commit: one MULTI in the dataset's slot.
    m_conn.append({"MULTI"});
    m_conn.append({"HMGET", k.manifest(), "spec", "inc", "next_index", "nchunks", "gen", "layout", "rows", "shards"});
    m_conn.append({"GET", k.vers(as_string(element(*r, 1)))});
    m_conn.append({"EXEC"});
    sharded = m_conn.flush();
    const auto& exec = *sharded.back();
    if (is_nil(exec) || is_nil(element(element(exec, 0), 0)) ||
        as_view(element(element(exec, 0), 1)) != as_view(element(*r, 1))) {
      throw StaleRead{};  // dropped or recreated in between
    }
    if (is_nil(element(exec, 1))) {
      throw_expired(dataset);
    }
    fields = &element(exec, 0);
    vers = as_string(element(exec, 1));
  }
  return head_of(k, *fields, vers);
}

Snapshot DatasetRows::head_of(const DatasetKeys& k, const redisReply& r, const std::string& vers) const {
  Snapshot s{k, {}, {}, 0, 0, 0, 0, {}, true, 0, 0, std::numeric_limits<int64_t>::max(), false, {}};
  s.layout = is_nil(element(r, 5)) ? std::string() : as_string(element(r, 5));
  if (s.layout != k_layout && s.layout != k_layout_v2) {
    throw Error(
        fmt::format("redis {}: dataset \"{}\" was stored by an older vstash in another layout; remove its "
                    "keys ({}*) and ingest it again",
                    m_conn.location(), k.name, k.base));
  }
  s.spec = stored_spec(k.name, element(r, 0));
  s.inc = as_string(element(r, 1));
  s.next_index = as_int(element(r, 2));
  s.nchunks = as_int(element(r, 3));
  s.gen = as_int(element(r, 4));
  s.rows = is_nil(element(r, 6)) ? -1 : as_int(element(r, 6));
  if (!is_nil(element(r, 7)) && as_int(element(r, 7)) > 1) {
    s.keys.shards = as_int(element(r, 7));
    s.keys.versions = decode_versions(vers, s.nchunks);
  }
  s.light = true;
  s.row_bytes = static_cast<size_t>(s.spec.dimension()) * dtype_size(s.spec.dtype);
  s.label_bytes =
      s.spec.label_dtype ? static_cast<size_t>(shape_product(s.spec.label_shape)) * dtype_size(*s.spec.label_dtype) : 0;
  return s;
}

std::optional<Snapshot> DatasetRows::cached_head(const std::string& dataset) const {
  if (m_read_cache && m_read_cache->head.keys.name == dataset) {
    return m_read_cache->head;
  }
  return std::nullopt;
}

void DatasetRows::forget_reads() { m_read_cache.reset(); }

bool DatasetRows::gen_unchanged(const Snapshot& snap) {
  auto r = m_conn.command({"HGET", snap.keys.manifest(), "gen"});
  if (is_nil(*r)) {
    throw_expired(snap.keys.name);
  }
  return as_int(*r) == snap.gen;
}

}  // namespace vstash::backends::redis
