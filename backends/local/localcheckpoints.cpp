// SPDX-License-Identifier: MIT
// Checkpoints in the local store: native SQLite, each call one transaction.
//
// There is no "latest" pointer table: the contract makes latest always the highest saved
// epoch (it moves only forward on save, and to the next lower epoch when the latest is
// deleted), so MAX(epoch) over the (model, epoch) primary key is exact, costs one b-tree
// seek, and cannot disagree with the rows even under concurrent saves.
#include "backends/local/localcheckpoints.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "src/errors.hpp"

namespace vstash::backends::local {

namespace {

// SQLite refuses blobs over 1 GB, so large arrays are stored in chunks.
constexpr size_t k_chunk_bytes = size_t{256} << 20;

std::map<std::string, double> metrics_from_text(const std::string& text) {
  return metrics_from_json(json::parse(text));
}

std::optional<int64_t> latest_epoch(Connection& conn, const std::string& model) {
  auto s = conn.prepare("SELECT max(epoch) FROM checkpoints WHERE model = ?1");
  s.bind(1, model);
  if (!s.step() || s.is_null(0)) {
    return std::nullopt;
  }
  return s.int_at(0);
}

std::optional<int64_t> resolve(Connection& conn, const CheckpointRef& ref) {
  return ref.epoch ? ref.epoch : latest_epoch(conn, ref.model);
}

void delete_epoch(Connection& conn, const std::string& model, int64_t epoch) {
  conn.prepare("DELETE FROM checkpoint_arrays WHERE model = ?1 AND epoch = ?2").bind(1, model).bind(2, epoch).run();
  conn.prepare("DELETE FROM checkpoints WHERE model = ?1 AND epoch = ?2").bind(1, model).bind(2, epoch).run();
}

std::string save_checkpoint(Connection& conn, const Checkpoint& cp) {
  validate_model_name(cp.model);
  const std::string path = checkpoint_path(cp.model, cp.epoch);
  if (cp.epoch < 0) {
    throw UsageError(fmt::format("checkpoint \"{}\": epoch must be non-negative", path));
  }
  // The caller's write transaction (BEGIN IMMEDIATE) makes this check and the insert one
  // step for every other process: of two savers of a new epoch, the second finds the first's.
  if (!cp.overwrite) {
    auto s = conn.prepare("SELECT 1 FROM checkpoints WHERE model = ?1 AND epoch = ?2");
    s.bind(1, cp.model).bind(2, cp.epoch);
    if (s.step()) {
      throw_checkpoint_exists(conn.path(), path);
    }
  }
  delete_epoch(conn, cp.model, cp.epoch);
  int64_t bytes = 0;
  auto ins = conn.prepare(
      "INSERT INTO checkpoint_arrays(model, epoch, name, chunk, dtype, shape, data) VALUES(?1, ?2, ?3, ?4, ?5, ?6, "
      "?7)");
  for (const auto& [name, array] : cp.arrays) {
    if (name.empty()) {
      throw UsageError(fmt::format("checkpoint \"{}\": empty array name", path));
    }
    const auto all = array.bytes();
    const std::string dtype(dtype_name(array.dtype()));
    const std::string shape = json(array.shape()).dump();
    size_t offset = 0;
    int64_t chunk = 0;
    do {
      const size_t n = std::min(k_chunk_bytes, all.size() - offset);
      ins.bind(1, cp.model).bind(2, cp.epoch).bind(3, name).bind(4, chunk).bind(5, dtype).bind(6, shape);
      ins.bind_static_blob(7, all.subspan(offset, n));
      ins.run();
      ins.reset();
      offset += n;
      ++chunk;
    } while (offset < all.size());
    bytes += static_cast<int64_t>(all.size());
  }
  conn.prepare(
          "INSERT INTO checkpoints(model, epoch, created_at, metrics, metadata, bytes) VALUES(?1, ?2, ?3, ?4, ?5, ?6)")
      .bind(1, cp.model)
      .bind(2, cp.epoch)
      .bind(3, now_rfc3339())
      .bind(4, metrics_to_json(cp.metrics).dump())
      .bind(5, dump_json(cp.metadata.is_null() ? json::object() : cp.metadata, "checkpoint \"" + path + "\""))
      .bind(6, bytes)
      .run();
  return path;
}

Checkpoint load_checkpoint(Connection& conn, const CheckpointRef& ref) {
  const auto epoch = resolve(conn, ref);
  if (!epoch) {
    throw NotFoundError(
        fmt::format("{}: checkpoint \"{}\": model \"{}\" has no checkpoints", conn.path(), ref.to_string(), ref.model));
  }
  Checkpoint cp;
  cp.model = ref.model;
  cp.epoch = *epoch;
  {
    auto s = conn.prepare("SELECT created_at, metrics, metadata FROM checkpoints WHERE model = ?1 AND epoch = ?2");
    s.bind(1, ref.model).bind(2, *epoch);
    if (!s.step()) {
      throw NotFoundError(fmt::format("{}: checkpoint \"{}\" does not exist", conn.path(), ref.to_string()));
    }
    cp.created_at = s.text_at(0);
    cp.metrics = metrics_from_text(s.text_at(1));
    cp.metadata = json::parse(s.text_at(2));
  }
  auto s = conn.prepare(
      "SELECT name, dtype, shape, data FROM checkpoint_arrays WHERE model = ?1 AND epoch = ?2 ORDER BY name, chunk");
  s.bind(1, ref.model).bind(2, *epoch);
  std::string name;
  std::vector<std::byte> bytes;
  DType dtype = DType::f32;
  Shape shape;
  auto flush = [&] {
    if (!name.empty()) {
      cp.arrays.emplace(name, Array(dtype, shape, std::move(bytes)));
      bytes.clear();
    }
  };
  while (s.step()) {
    std::string n = s.text_at(0);
    if (n != name) {
      flush();
      name = std::move(n);
      dtype = parse_dtype_name(s.text_at(1));
      shape = json::parse(s.text_at(2)).get<Shape>();
    }
    const auto blob = s.blob_at(3);
    bytes.insert(bytes.end(), blob.begin(), blob.end());
  }
  flush();
  return cp;
}

std::vector<CheckpointInfo> list_checkpoints(Connection& conn, const std::string& model) {
  // The latest flag is the highest epoch per model, computed in the same snapshot.
  auto s = conn.prepare(
      "SELECT model, epoch, metrics, bytes, created_at, "
      "epoch = (SELECT max(epoch) FROM checkpoints c2 WHERE c2.model = c.model) "
      "FROM checkpoints c WHERE ?1 = '' OR model = ?1 ORDER BY model, epoch");
  s.bind(1, model);
  std::vector<CheckpointInfo> out;
  while (s.step()) {
    CheckpointInfo i;
    i.model = s.text_at(0);
    i.epoch = s.int_at(1);
    i.path = checkpoint_path(i.model, i.epoch);
    i.metrics = metrics_from_text(s.text_at(2));
    i.bytes = s.int_at(3);
    i.created_at = s.text_at(4);
    i.latest = s.int_at(5) != 0;
    out.push_back(std::move(i));
  }
  return out;
}

bool delete_checkpoint(Connection& conn, const CheckpointRef& ref) {
  const auto epoch = resolve(conn, ref);
  if (!epoch) {
    return false;
  }
  delete_epoch(conn, ref.model, *epoch);
  return sqlite3_changes64(conn.handle()) > 0;
}

}  // namespace

std::map<std::string, int64_t> checkpoint_counts(Connection& conn) {
  auto s = conn.prepare("SELECT model, count(*) FROM checkpoints GROUP BY model ORDER BY model");
  std::map<std::string, int64_t> out;
  while (s.step()) {
    out[s.text_at(0)] = s.int_at(1);
  }
  return out;
}

LocalCheckpoints::LocalCheckpoints(Connections& db) : m_db(db) {}

// A checkpoint is what training resumes from: its commit survives power loss too.
std::string LocalCheckpoints::save_checkpoint(const Checkpoint& checkpoint) {
  return m_db.write_durable([&](Connection& c) { return local::save_checkpoint(c, checkpoint); });
}

Checkpoint LocalCheckpoints::load_checkpoint(const std::string& path) {
  const auto ref = CheckpointRef::parse(path);
  return m_db.read([&](Connection& c) { return local::load_checkpoint(c, ref); });
}

std::vector<CheckpointInfo> LocalCheckpoints::list_checkpoints(const std::string& model) {
  return m_db.read([&](Connection& c) { return local::list_checkpoints(c, model); });
}

bool LocalCheckpoints::delete_checkpoint(const std::string& path) {
  const auto ref = CheckpointRef::parse(path);
  return m_db.write([&](Connection& c) { return local::delete_checkpoint(c, ref); });
}

}  // namespace vstash::backends::local
