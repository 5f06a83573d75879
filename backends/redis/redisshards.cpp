// SPDX-License-Identifier: MIT
// One dataset spread over S shards (S > 1): chunk key names per shard and version, the
// version map's bytes, and the copy-on-write versions a mutation writes before its commit.
#include <fmt/format.h>
#include <charconv>
#include <cstring>

#include "backends/redis/redisrows.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

DatasetKeys::DatasetKeys(const StoreConfig& cfg, const std::string& dataset)
    : name(dataset),
      base(fmt::format("{}ds:{{{}}}:", cfg.prefix, key_escape(dataset))),
      m_tag(fmt::format("{}ds:{{{}", cfg.prefix, key_escape(dataset))) {}

namespace {

void append_int(std::string& out, int64_t n) {
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr);
}

}  // namespace

std::string DatasetKeys::key(std::string_view kind, const std::string& inc, int64_t n) const {
  std::string out;
  key_into(out, kind, inc, n);
  return out;
}

void DatasetKeys::key_into(std::string& out, std::string_view kind, const std::string& inc, int64_t n) const {
  out.clear();
  if (shards > 1) {
    const uint32_t v = n >= 0 && n < static_cast<int64_t>(versions.size()) ? versions[static_cast<size_t>(n)] : 0;
    out.append(m_tag).push_back('/');
    append_int(out, n % shards);
    out.append("}:").append(inc).push_back(':');
    out.append(kind).push_back(':');
    append_int(out, n);
    out.append(":v");
    append_int(out, v);
    return;
  }
  out.append(base).append(inc).push_back(':');
  out.append(kind).push_back(':');
  append_int(out, n);
}

std::string DatasetKeys::key_at(std::string_view kind, const std::string& inc, int64_t n, uint32_t v) const {
  return fmt::format("{}/{}}}:{}:{}:{}:v{}", m_tag, n % shards, inc, kind, n, v);
}

std::vector<uint32_t> decode_versions(std::string_view map, int64_t nchunks) {
  std::vector<uint32_t> out(static_cast<size_t>(std::max<int64_t>(nchunks, 0)), 0);
  for (size_t c = 0; c < out.size() && 4 * c + 4 <= map.size(); ++c) {
    out[c] = load_u32(map.data() + 4 * c);
  }
  return out;
}

std::string encode_versions(const std::vector<uint32_t>& run) {
  std::string out(4 * run.size(), '\0');
  for (size_t i = 0; i < run.size(); ++i) {
    for (size_t b = 0; b < 4; ++b) {
      out[4 * i + b] = static_cast<char>((run[i] >> (8 * b)) & 0xff);
    }
  }
  return out;
}

void DatasetRows::stale_or_expired(const Snapshot& snap) const {
  if (snap.shards() > 1) {
    auto r = m_conn.command({"HGET", snap.keys.manifest(), "gen"});
    if (!is_nil(*r) && as_int(*r) != snap.gen) {
      throw StaleRead{};
    }
  }
  throw_expired(snap.keys.name);
}

ChunkVersions::ChunkVersions(Connection& conn, const StoreConfig& cfg, const Snapshot& snap)
    : m_conn(conn), m_cfg(cfg), m_snap(snap) {}

ChunkVersions::~ChunkVersions() {
  if (m_committed || m_version == 0 || !m_conn.connected()) {
    return;
  }
  try {
    for (const auto& [c, parts] : m_parts) {
      const auto& k = m_snap.keys;
      m_conn.append({"UNLINK", k.key_at("rows", m_snap.inc, c, m_version), k.key_at("chunk", m_snap.inc, c, m_version),
                     k.key_at("labels", m_snap.inc, c, m_version)});
    }
    m_conn.flush();
    m_conn.command({"HDEL", m_snap.keys.pending(m_snap.inc), std::to_string(m_version)});
  } catch (...) {  // NOLINT(bugprone-empty-catch): an unreferenced version costs memory, never a wrong read
  }
}

unsigned ChunkVersions::bit_of(std::string_view kind) { return kind == "rows" ? 1U : kind == "chunk" ? 2U : 4U; }

// INCR of the counter and the pending entry, atomically (one slot): a writer killed after it
// leaves an entry naming every key it may have written.
constexpr std::string_view k_allocate = R"lua(
local v = redis.call('INCR', KEYS[1]) % 4294967296
if v == 0 then v = redis.call('INCR', KEYS[1]) % 4294967296 end
redis.call('HSET', KEYS[2], v, ARGV[1])
return v
)lua";

void ChunkVersions::allocate(int64_t end) {
  if (active() && m_version != 0 && end > m_end) {  // not expected: VersionBound is an upper bound
    m_conn.command({"HSET", m_snap.keys.pending(m_snap.inc), std::to_string(m_version), std::to_string(end)});
    m_end = end;
  }
  if (active() && m_version == 0) {
    const auto& k = m_snap.keys;
    const std::string bound = std::to_string(end);
    m_version = static_cast<uint32_t>(
        as_int(*m_conn.command({"EVAL", k_allocate, "2", k.vseq(m_snap.inc), k.pending(m_snap.inc), bound})));
  }
}

std::string ChunkVersions::key(std::string_view kind, int64_t c) {
  if (!active()) {
    return m_snap.keys.key(kind, m_snap.inc, c);
  }
  m_parts[c] |= kind == "rows" ? bit_of(kind) : 0U;  // records are always written whole
  return m_snap.keys.key_at(kind, m_snap.inc, c, m_version);
}

void ChunkVersions::prepare(std::string_view kind, int64_t c, bool whole) {
  if (!active() || (m_parts[c] & bit_of(kind)) != 0) {
    return;
  }
  m_parts[c] |= bit_of(kind);
  if (!whole && c < m_snap.nchunks) {
    m_conn.append({"COPY", m_snap.keys.key(kind, m_snap.inc, c), m_snap.keys.key_at(kind, m_snap.inc, c, m_version)});
  }
}

void ChunkVersions::write_out() {
  if (!active()) {
    return;
  }
  for (auto& [c, parts] : m_parts) {
    for (const std::string_view kind : {"rows", "chunk", "labels"}) {
      if (kind == "labels" && m_snap.label_bytes == 0) {
        continue;
      }
      if ((parts & bit_of(kind)) == 0 && c < m_snap.nchunks) {
        m_conn.append(
            {"COPY", m_snap.keys.key(kind, m_snap.inc, c), m_snap.keys.key_at(kind, m_snap.inc, c, m_version)});
      }
      parts |= bit_of(kind);
      append_expire(m_conn, m_cfg, m_snap.keys.key_at(kind, m_snap.inc, c, m_version));
    }
  }
  m_conn.flush();
  if (const auto& hook = before_commit_hook()) {
    hook();
  }
}

void ChunkVersions::append_commit() {
  if (!active()) {
    return;
  }
  const auto& k = m_snap.keys;
  m_conn.append({"HDEL", k.pending(m_snap.inc), std::to_string(m_version)});
  for (auto it = m_parts.begin(); it != m_parts.end();) {
    const int64_t first = it->first;
    std::vector<uint32_t> run;
    for (int64_t c = first; it != m_parts.end() && it->first == c; ++it, ++c) {
      run.push_back(m_version);
    }
    m_conn.append({"SETRANGE", k.vers(m_snap.inc), std::to_string(4 * first), encode_versions(run)});
  }
  for (const auto& [c, parts] : m_parts) {
    if (c < m_snap.nchunks) {
      m_conn.append({"UNLINK", k.rows(m_snap.inc, c), k.chunk(m_snap.inc, c), k.labels(m_snap.inc, c)});
    }
  }
}

}  // namespace vstash::backends::redis
