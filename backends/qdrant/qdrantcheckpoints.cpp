// SPDX-License-Identifier: MIT
// Checkpoints and training progress as Qdrant points.
//
// Collection __vstash_checkpoints (vector size 1, Dot; every point's vector is [1]):
//   manifest  id uuid5("checkpoint:m:MODEL@EPOCH"), payload {kind:"manifest", model, epoch,
//             token, arrays:[{name, chunks, bytes}], metrics, metadata, created_at, bytes}
//   chunk     id uuid5("checkpoint:c:MODEL@EPOCH:TOKEN:A:C"), payload {kind:"chunk", model,
//             blob: base64 of at most 2 MiB of the array's rowcodec bytes}
// Chunks are written (wait=true) under a fresh token before the manifest that names it, so a
// reader sees the old checkpoint or the new one, never a mix; the replaced chunks are deleted
// afterwards. Latest is the highest epoch among the model's manifests at read time.
// Collection __vstash_progress: one point per (run, rank), id uuid5("progress:RUN#RANK").
// kind, model and run carry keyword payload indexes, so strict-mode servers accept the filters.
#include "qdrantcheckpoints.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <mutex>
#include <random>
#include <set>
#include <span>

#include "../../src/errors.hpp"
#include "../../src/util/base64.hpp"
#include "../../src/util/uuid.hpp"
#include "../common/rowcodec.hpp"
#include "qdrantpoints.hpp"

namespace vstash::backends::qdrant::checkpoints {

namespace {

constexpr size_t k_chunk_raw_bytes = 2 * 1024 * 1024;

std::string ckpt() { return std::string(k_checkpoint_collection); }
std::string prog() { return std::string(k_progress_collection); }

json pid(const std::string& key) { return json(util::uuid_v5(k_id_namespace, key)); }
json manifest_id(const std::string& model, int64_t epoch) { return pid(fmt::format("checkpoint:m:{}@{}", model, epoch)); }
json chunk_id(const std::string& model, int64_t epoch, const std::string& token, size_t a, size_t c) {
  return pid(fmt::format("checkpoint:c:{}@{}:{}:{}:{}", model, epoch, token, a, c));
}

std::string fresh_token() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

std::string points_body(const std::vector<std::pair<json, json>>& points) {
  json list = json::array();
  for (const auto& [id, payload] : points) {
    list.push_back({{"id", id}, {"vector", {1.0}}, {"payload", payload}});
  }
  return json{{"points", list}}.dump();
}

// Creates the collection and its indexes once per process and server.
void ensure(RestClient& client, const std::string& collection, const std::vector<std::string>& keyword_fields) {
  static std::mutex mutex;
  static std::set<std::string> done;
  const std::string key = client.location() + "/" + collection;
  {
    std::lock_guard lock(mutex);
    if (done.count(key)) {
      return;
    }
  }
  create_collection(client, collection, 1, "Dot");
  for (const auto& f : keyword_fields) {
    create_payload_index(client, collection, f, "keyword");
  }
  std::lock_guard lock(mutex);
  done.insert(key);
}

json match(const std::string& key, const std::string& value) {
  return json{{"key", key}, {"match", {{"value", value}}}};
}

// Scrolls a reserved collection; a collection that does not exist yet holds nothing.
std::vector<json> scroll_or_empty(RestClient& client, const std::string& collection, const json& filter) {
  try {
    return scroll_all(client, collection, json{{"filter", filter}, {"limit", 1000}, {"with_payload", true},
                                               {"with_vector", false}});
  } catch (const NotFoundError&) {
    return {};
  }
}

std::vector<json> retrieve_or_empty(RestClient& client, const std::string& collection, const std::vector<json>& ids) {
  try {
    return retrieve(client, collection, ids, true, false);
  } catch (const NotFoundError&) {
    return {};
  }
}

std::map<std::string, double> metrics_of(const json& j) {
  std::map<std::string, double> out;
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      out[k] = v.is_number() ? v.get<double>() : std::nan("");  // NaN is stored as null
    }
  }
  return out;
}

CheckpointInfo info_of(const json& md) {
  CheckpointInfo info;
  info.model = md.value("model", std::string());
  info.epoch = md.value("epoch", int64_t{0});
  info.path = checkpoint_path(info.model, info.epoch);
  info.metrics = metrics_of(md.value("metrics", json::object()));
  info.bytes = md.value("bytes", int64_t{0});
  info.created_at = md.value("created_at", std::string());
  return info;
}

std::vector<json> chunk_ids(const json& md) {
  std::vector<json> ids;
  const std::string model = md.value("model", std::string());
  const auto epoch = md.value("epoch", int64_t{0});
  const std::string token = md.value("token", std::string());
  const json arrays = md.value("arrays", json::array());
  for (size_t a = 0; a < arrays.size(); ++a) {
    for (size_t c = 0; c < arrays[a].value("chunks", size_t{0}); ++c) {
      ids.push_back(chunk_id(model, epoch, token, a, c));
    }
  }
  return ids;
}

// Manifests of model (all models when empty), by model then epoch.
std::vector<json> manifests(RestClient& client, const std::string& model) {
  json must = json::array({match("kind", "manifest")});
  if (!model.empty()) {
    must.push_back(match("model", model));
  }
  std::vector<json> out;
  for (auto& rec : scroll_or_empty(client, ckpt(), json{{"must", must}})) {
    out.push_back(rec.value("payload", json::object()));
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return std::pair(a.value("model", std::string()), a.value("epoch", int64_t{0})) <
           std::pair(b.value("model", std::string()), b.value("epoch", int64_t{0}));
  });
  return out;
}

std::optional<json> resolve(RestClient& client, const std::string& path) {
  const CheckpointRef ref = CheckpointRef::parse(path);
  if (!ref.epoch) {
    auto all = manifests(client, ref.model);
    return all.empty() ? std::nullopt : std::optional(all.back());
  }
  const auto found = retrieve_or_empty(client, ckpt(), {manifest_id(ref.model, *ref.epoch)});
  if (found.empty()) {
    return std::nullopt;
  }
  return found[0].value("payload", json::object());
}

}  // namespace

std::string save(RestClient& client, const Checkpoint& cp) {
  validate_model_name(cp.model);
  if (cp.epoch < 0) {
    throw UsageError(fmt::format("checkpoint \"{}\": epoch {} is negative", cp.model, cp.epoch));
  }
  ensure(client, ckpt(), {"kind", "model"});
  const std::string token = fresh_token();
  std::vector<std::string> bodies;
  json arrays = json::array();
  int64_t bytes = 0;
  size_t a = 0;
  for (const auto& [name, array] : cp.arrays) {
    const std::string raw = encode_array(array);
    const size_t chunks = std::max<size_t>(1, (raw.size() + k_chunk_raw_bytes - 1) / k_chunk_raw_bytes);
    for (size_t c = 0; c < chunks; ++c) {
      const std::string_view part = std::string_view(raw).substr(c * k_chunk_raw_bytes, k_chunk_raw_bytes);
      const json payload = {{"kind", "chunk"},
                            {"model", cp.model},
                            {"blob", util::base64_encode(std::as_bytes(std::span(part.data(), part.size())))}};
      bodies.push_back(points_body({{chunk_id(cp.model, cp.epoch, token, a, c), payload}}));
    }
    arrays.push_back({{"name", name}, {"chunks", chunks}, {"bytes", raw.size()}});
    bytes += static_cast<int64_t>(raw.size());
    ++a;
  }
  json metrics = json::object();
  for (const auto& [k, v] : cp.metrics) {
    metrics[k] = std::isfinite(v) ? json(v) : json();
  }
  const json manifest = {{"kind", "manifest"},
                         {"model", cp.model},
                         {"epoch", cp.epoch},
                         {"token", token},
                         {"arrays", arrays},
                         {"metrics", metrics},
                         {"metadata", cp.metadata.is_null() ? json::object() : cp.metadata},
                         {"created_at", now_rfc3339()},
                         {"bytes", bytes}};
  const json mid = manifest_id(cp.model, cp.epoch);
  const auto old = retrieve_or_empty(client, ckpt(), {mid});
  upsert_bodies(client, ckpt(), bodies);
  upsert_bodies(client, ckpt(), {points_body({{mid, manifest}})});
  if (!old.empty()) {
    // The replaced checkpoint's chunks: unreachable now that the manifest names the new token.
    const json old_md = old[0].value("payload", json::object());
    if (old_md.value("token", std::string()) != token) {
      const auto stale = chunk_ids(old_md);
      if (!stale.empty()) {
        delete_points(client, ckpt(), stale);
      }
    }
  }
  return checkpoint_path(cp.model, cp.epoch);
}

Checkpoint load(RestClient& client, const std::string& path) {
  const auto md = resolve(client, path);
  if (!md) {
    throw NotFoundError(fmt::format("{}: checkpoint \"{}\" does not exist", client.location(), path));
  }
  const CheckpointInfo info = info_of(*md);
  Checkpoint cp;
  cp.model = info.model;
  cp.epoch = info.epoch;
  cp.metrics = info.metrics;
  cp.created_at = info.created_at;
  cp.metadata = md->value("metadata", json::object());
  const auto ids = chunk_ids(*md);
  std::map<std::string, std::string> blobs;  // point key -> base64
  for (const auto& rec : retrieve_or_empty(client, ckpt(), ids)) {
    blobs[point_key(rec.at("id"))] = rec.value("payload", json::object()).value("blob", std::string());
  }
  const json arrays = md->value("arrays", json::array());
  const std::string token = md->value("token", std::string());
  for (size_t a = 0; a < arrays.size(); ++a) {
    std::string raw;
    for (size_t c = 0; c < arrays[a].value("chunks", size_t{0}); ++c) {
      auto it = blobs.find(point_key(chunk_id(cp.model, cp.epoch, token, a, c)));
      if (it == blobs.end()) {
        throw RetryableError(fmt::format("{}: checkpoint \"{}\": chunk {} of \"{}\" is missing (replaced while "
                                         "reading?); retry", client.location(), info.path, c,
                                         arrays[a].value("name", std::string())));
      }
      const auto part = util::base64_decode(it->second);
      raw.append(reinterpret_cast<const char*>(part.data()), part.size());
    }
    cp.arrays.emplace(arrays[a].value("name", std::string()), decode_array(raw));
  }
  return cp;
}

std::vector<CheckpointInfo> list(RestClient& client, const std::string& model) {
  if (!model.empty()) {
    validate_model_name(model);
  }
  std::vector<CheckpointInfo> out;
  for (const auto& md : manifests(client, model)) {
    out.push_back(info_of(md));
  }
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].latest = i + 1 == out.size() || out[i + 1].model != out[i].model;
  }
  return out;
}

bool remove(RestClient& client, const std::string& path) {
  const auto md = resolve(client, path);
  if (!md) {
    return false;
  }
  // The manifest goes first: from then on the checkpoint is gone for readers.
  delete_points(client, ckpt(), {manifest_id(md->value("model", std::string()), md->value("epoch", int64_t{0}))});
  const auto ids = chunk_ids(*md);
  if (!ids.empty()) {
    delete_points(client, ckpt(), ids);
  }
  return true;
}

void record_progress(RestClient& client, const ProgressRecord& r) {
  if (r.run.empty()) {
    throw UsageError("progress: run name is empty");
  }
  ensure(client, prog(), {"run"});
  json metrics = json::object();
  for (const auto& [k, v] : r.metrics) {
    metrics[k] = std::isfinite(v) ? json(v) : json();
  }
  const json payload = {{"run", r.run},       {"rank", r.rank},       {"epoch", r.epoch},
                        {"step", r.step},     {"metrics", metrics},   {"updated_at", now_rfc3339()}};
  upsert_bodies(client, prog(), {points_body({{pid(fmt::format("progress:{}#{}", r.run, r.rank)), payload}})});
}

std::vector<ProgressRecord> list_progress(RestClient& client, const std::string& run) {
  const json filter = run.empty() ? json::object() : json{{"must", json::array({match("run", run)})}};
  std::vector<ProgressRecord> out;
  for (const auto& rec : scroll_or_empty(client, prog(), filter)) {
    const json md = rec.value("payload", json::object());
    ProgressRecord p;
    p.run = md.value("run", std::string());
    p.rank = md.value("rank", int64_t{0});
    p.epoch = md.value("epoch", int64_t{0});
    p.step = md.value("step", int64_t{0});
    p.metrics = metrics_of(md.value("metrics", json::object()));
    p.updated_at = md.value("updated_at", std::string());
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::pair(a.run, a.rank) < std::pair(b.run, b.rank);
  });
  return out;
}

}  // namespace vstash::backends::qdrant::checkpoints
