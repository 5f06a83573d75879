// SPDX-License-Identifier: MIT
// Checkpoints and training progress as Pinecone records.
//
// A checkpoint MODEL@EPOCH is a manifest record "m:MODEL@EPOCH" (metrics, metadata, array
// names and chunk counts as JSON strings) plus one record per 29000-byte chunk of each array's
// rowcodec blob ("c:MODEL@EPOCH:TOKEN:A:C", metadata "blob" in base64), so every record stays
// under the 40 KB metadata limit. Chunks go first and under a fresh TOKEN; the manifest is
// written last and names the token, so a reader sees the old checkpoint or the new one, never
// a mix (Pinecone applies writes in order). Latest is the highest epoch listed at read time.
#include <algorithm>
#include <fmt/format.h>
#include <random>

#include "../../src/errors.hpp"
#include "../../src/util/base64.hpp"
#include "../common/rowcodec.hpp"
#include "pineconeinternal.hpp"

namespace vstash::backends::pinecone::checkpoints {

namespace {

constexpr size_t k_chunk_raw_bytes = 29000;  // 38668 base64 characters: far under 40960

std::string manifest_id(const std::string& model, int64_t epoch) { return fmt::format("m:{}@{}", model, epoch); }

std::string chunk_id(const std::string& model, int64_t epoch, const std::string& token, size_t a, size_t c) {
  return fmt::format("c:{}@{}:{}:{}:{}", model, epoch, token, a, c);
}

std::string fresh_token() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

std::vector<std::string> chunk_ids(const std::string& model, int64_t epoch, const json& md) {
  std::vector<std::string> ids;
  const json arrays = json::parse(md.value("arrays", std::string("[]")));
  const std::string token = md.value("token", std::string());
  for (size_t a = 0; a < arrays.size(); ++a) {
    for (size_t c = 0; c < arrays[a].value("chunks", size_t{0}); ++c) {
      ids.push_back(chunk_id(model, epoch, token, a, c));
    }
  }
  return ids;
}

CheckpointInfo info_of(const json& md) {
  CheckpointInfo info;
  info.model = md.value("model", std::string());
  info.epoch = static_cast<int64_t>(md.value("epoch", 0.0));
  info.path = checkpoint_path(info.model, info.epoch);
  info.metrics = json::parse(md.value("metrics", std::string("{}"))).get<std::map<std::string, double>>();
  info.bytes = static_cast<int64_t>(md.value("bytes", 0.0));
  info.created_at = md.value("created_at", std::string());
  return info;
}

// Every manifest of model (all models when empty), by model then epoch.
std::vector<json> manifests(RecordOps& ops, const std::string& model) {
  std::vector<json> out;
  for (auto& rec : ops.fetch_prefix(model.empty() ? "m:" : "m:" + model + "@")) {
    json md = rec.value("metadata", json::object());
    if (model.empty() || md.value("model", std::string()) == model) {
      out.push_back(std::move(md));
    }
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    const auto ka = std::pair(a.value("model", std::string()), a.value("epoch", 0.0));
    const auto kb = std::pair(b.value("model", std::string()), b.value("epoch", 0.0));
    return ka < kb;
  });
  return out;
}

// The manifest a reference names, resolving @latest; nullopt when absent.
std::optional<json> resolve(RecordOps& ops, const std::string& path) {
  const CheckpointRef ref = CheckpointRef::parse(path);
  if (!ref.epoch) {
    auto all = manifests(ops, ref.model);
    return all.empty() ? std::nullopt : std::optional(all.back());
  }
  const auto found = ops.fetch({manifest_id(ref.model, *ref.epoch)});
  if (found.empty()) {
    return std::nullopt;
  }
  return found.begin()->second.value("metadata", json::object());
}

}  // namespace

std::string save(RecordOps& ops, const Checkpoint& cp) {
  validate_model_name(cp.model);
  if (cp.epoch < 0) {
    throw UsageError(fmt::format("checkpoint \"{}\": epoch {} is negative", cp.model, cp.epoch));
  }
  const std::string token = fresh_token();
  std::vector<std::string> records;
  json arrays = json::array();
  int64_t bytes = 0;
  size_t a = 0;
  for (const auto& [name, array] : cp.arrays) {
    const std::string raw = encode_array(array);
    const size_t chunks = std::max<size_t>(1, (raw.size() + k_chunk_raw_bytes - 1) / k_chunk_raw_bytes);
    for (size_t c = 0; c < chunks; ++c) {
      const std::string_view part = std::string_view(raw).substr(c * k_chunk_raw_bytes, k_chunk_raw_bytes);
      const json md = {{"kind", "chunk"},
                       {"blob", util::base64_encode(std::span(reinterpret_cast<const std::byte*>(part.data()), part.size()))}};
      records.push_back(placeholder_record(chunk_id(cp.model, cp.epoch, token, a, c), ops.dimension, md));
    }
    arrays.push_back({{"name", name}, {"chunks", chunks}, {"bytes", raw.size()}});
    bytes += static_cast<int64_t>(raw.size());
    ++a;
  }
  const std::string path = checkpoint_path(cp.model, cp.epoch);
  const json manifest = {{"kind", "manifest"},
                         {"model", cp.model},
                         {"epoch", cp.epoch},
                         {"token", token},
                         {"arrays", arrays.dump()},
                         {"metrics", json(cp.metrics).dump()},
                         {"metadata", (cp.metadata.is_null() ? json::object() : cp.metadata).dump()},
                         {"created_at", now_rfc3339()},
                         {"bytes", bytes}};
  if (metadata_bytes(manifest) > k_max_metadata_bytes) {
    throw UsageError(fmt::format("checkpoint \"{}\": metrics and metadata take {} bytes, over pinecone's {}-byte "
                                 "record limit", path, metadata_bytes(manifest), k_max_metadata_bytes));
  }
  const auto old = ops.fetch({manifest_id(cp.model, cp.epoch)});
  ops.upsert(records);
  ops.upsert({placeholder_record(manifest_id(cp.model, cp.epoch), ops.dimension, manifest)});
  if (!old.empty()) {
    // The replaced checkpoint's chunks: unreachable now that the manifest names the new token.
    const json old_md = old.begin()->second.value("metadata", json::object());
    if (old_md.value("token", std::string()) != token) {
      const auto stale = chunk_ids(cp.model, cp.epoch, old_md);
      if (!stale.empty()) {
        ops.remove(stale);
      }
    }
  }
  ops.settle();
  return path;
}

Checkpoint load(RecordOps& ops, const std::string& path) {
  const auto md = resolve(ops, path);
  if (!md) {
    throw NotFoundError(fmt::format("{}: checkpoint \"{}\" does not exist", ops.location, path));
  }
  Checkpoint cp;
  const CheckpointInfo info = info_of(*md);
  cp.model = info.model;
  cp.epoch = info.epoch;
  cp.metrics = info.metrics;
  cp.created_at = info.created_at;
  cp.metadata = json::parse(md->value("metadata", std::string("{}")));
  const auto ids = chunk_ids(cp.model, cp.epoch, *md);
  const auto chunks = ops.fetch(ids);
  const json arrays = json::parse(md->value("arrays", std::string("[]")));
  const std::string token = md->value("token", std::string());
  for (size_t a = 0; a < arrays.size(); ++a) {
    std::string raw;
    for (size_t c = 0; c < arrays[a].value("chunks", size_t{0}); ++c) {
      auto it = chunks.find(chunk_id(cp.model, cp.epoch, token, a, c));
      if (it == chunks.end()) {
        throw RetryableError(fmt::format("{}: checkpoint \"{}\": chunk {} of \"{}\" is not visible yet or was "
                                         "replaced; retry", ops.location, info.path, c,
                                         arrays[a].value("name", std::string())));
      }
      const auto part = util::base64_decode(it->second.value("metadata", json::object()).value("blob", std::string()));
      raw.append(reinterpret_cast<const char*>(part.data()), part.size());
    }
    cp.arrays.emplace(arrays[a].value("name", std::string()), decode_array(raw));
  }
  return cp;
}

std::vector<CheckpointInfo> list(RecordOps& ops, const std::string& model) {
  if (!model.empty()) {
    validate_model_name(model);
  }
  std::vector<CheckpointInfo> out;
  for (const auto& md : manifests(ops, model)) {
    out.push_back(info_of(md));
  }
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].latest = i + 1 == out.size() || out[i + 1].model != out[i].model;
  }
  return out;
}

bool remove(RecordOps& ops, const std::string& path) {
  const auto md = resolve(ops, path);
  if (!md) {
    return false;
  }
  const std::string model = md->value("model", std::string());
  const auto epoch = static_cast<int64_t>(md->value("epoch", 0.0));
  // The manifest goes first: from then on the checkpoint is gone for readers.
  ops.remove({manifest_id(model, epoch)});
  const auto ids = chunk_ids(model, epoch, *md);
  if (!ids.empty()) {
    ops.remove(ids);
  }
  ops.settle();
  return true;
}

void record_progress(RecordOps& ops, const ProgressRecord& r) {
  if (r.run.empty()) {
    throw UsageError("progress: run name is empty");
  }
  const json md = {{"run", r.run},
                   {"rank", r.rank},
                   {"epoch", r.epoch},
                   {"step", r.step},
                   {"metrics", json(r.metrics).dump()},
                   {"updated_at", now_rfc3339()}};
  ops.upsert({placeholder_record(stored_id(fmt::format("{}#{}", r.run, r.rank)), ops.dimension, md)});
  ops.settle();
}

std::vector<ProgressRecord> list_progress(RecordOps& ops, const std::string& run) {
  std::vector<ProgressRecord> out;
  for (const auto& rec : ops.fetch_prefix(run.empty() ? "" : run + "#")) {
    const json md = rec.value("metadata", json::object());
    ProgressRecord p;
    p.run = md.value("run", std::string());
    if (!run.empty() && p.run != run) {
      continue;
    }
    p.rank = static_cast<int64_t>(md.value("rank", 0.0));
    p.epoch = static_cast<int64_t>(md.value("epoch", 0.0));
    p.step = static_cast<int64_t>(md.value("step", 0.0));
    p.metrics = json::parse(md.value("metrics", std::string("{}"))).get<std::map<std::string, double>>();
    p.updated_at = md.value("updated_at", std::string());
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::pair(a.run, a.rank) < std::pair(b.run, b.rank);
  });
  return out;
}

}  // namespace vstash::backends::pinecone::checkpoints
