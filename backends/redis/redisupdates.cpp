// SPDX-License-Identifier: MIT
// update_row: one row's sample and/or metadata replaced in place, under WATCH + MULTI/EXEC.
#include <fmt/format.h>

#include "backends/common/rowcheck.hpp"
#include "backends/redis/redisrows.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

namespace {

// The sample replacing a row's, as a batch of one, checked against the spec and finite.
Array checked_row(const Snapshot& snap, const std::string& dataset, const std::string& id, const Array& sample) {
  Shape batch_shape = {1};
  batch_shape.insert(batch_shape.end(), snap.spec.row_shape.begin(), snap.spec.row_shape.end());
  if (sample.dtype() != snap.spec.dtype || (sample.shape() != snap.spec.row_shape && sample.shape() != batch_shape)) {
    throw UsageError(fmt::format("dataset \"{}\": holds {} rows of shape {}, got {} of shape {}", dataset,
                                 dtype_name(snap.spec.dtype), shape_to_string(snap.spec.row_shape),
                                 dtype_name(sample.dtype()), shape_to_string(sample.shape())));
  }
  Array row(sample.dtype(), batch_shape, std::vector<std::byte>(sample.bytes().begin(), sample.bytes().end()));
  check_finite(row, {id}, dataset);
  return row;
}

// metadata's keys into meta; a null value removes its key.
void merge_metadata(json& meta, const json& metadata, const std::string& dataset, const std::string& id) {
  if (!metadata.is_object()) {
    throw UsageError(fmt::format("dataset \"{}\": row \"{}\": metadata must be a JSON object", dataset, id));
  }
  if (!meta.is_object()) {
    meta = json::object();
  }
  for (const auto& [key, value] : metadata.items()) {
    if (value.is_null()) {
      meta.erase(key);
    } else {
      meta[key] = value;
    }
  }
}

}  // namespace

bool DatasetRows::update(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
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
  auto blob = m_conn.command({"GET", snap.keys.rows(snap.inc, c)});
  if (is_nil(*blob)) {
    stale_or_expired(snap);
  }
  auto records = decode_chunk_records(as_view(*blob));
  const auto rec = records.find(slot_of(*where));
  if (rec == records.end()) {
    throw_expired(dataset);  // the ids hash names a slot its chunk does not hold
  }
  auto [rec_id, meta] = decode_record(rec->second);
  const std::optional<Array> row =
      sample ? std::optional<Array>(checked_row(snap, dataset, id, *sample)) : std::nullopt;
  if (metadata) {
    merge_metadata(meta, *metadata, dataset, id);
  }
  rec->second = encode_record(rec_id, meta);
  const std::string value = encode_chunk_records(records);
  // S > 1: the chunk's new version before the MULTI (ChunkVersions); S = 1: in it.
  ChunkVersions versions(m_conn, m_cfg, snap);
  auto append_chunk = [&] {
    if (row) {
      versions.prepare("chunk", c, false);
      const std::string offset = std::to_string(static_cast<size_t>(slot_of(*where)) * snap.row_bytes);
      m_conn.append({"SETRANGE", versions.key("chunk", c), offset,
                     std::string_view(reinterpret_cast<const char*>(row->data()), row->nbytes())});
    }
    m_conn.append({"SET", versions.key("rows", c), value});
  };
  if (versions.active()) {
    versions.allocate(c + 1);
    append_chunk();
    versions.write_out();
  }
  m_conn.append({"MULTI"});
  watched.disarm();
  if (!versions.active()) {
    append_chunk();
  }
  append_ids_catch_up(k, snap, catch_up);
  m_conn.append({"HINCRBY", k.manifest(), "gen", "1"});
  append_expire_all(k, snap);
  versions.append_commit();
  m_conn.append({"EXEC"});
  if (!exec_ok(m_conn.flush())) {
    return false;
  }
  versions.committed();
  watched.turn().ids_unchanged(snap.inc, snap.gen);
  return true;
}

}  // namespace vstash::backends::redis
