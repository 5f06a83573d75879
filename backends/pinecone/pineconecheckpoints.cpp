// SPDX-License-Identifier: MIT
// Checkpoints and training progress as Pinecone records.
//
// Checkpoints are the records of backends/common/chunkedcheckpoints: manifest "m:MODEL@EPOCH"
// plus chunks "c:MODEL@EPOCH:TOKEN:A:C" of 29000 raw bytes (38668 base64 characters), so every
// record stays under the 40 KB metadata limit; record keys are the record ids and the fields
// their metadata. Pinecone applies one writer's upserts in order, so the manifest written last
// never names chunks a reader cannot find (once `wait` has let the writes become visible).
// Progress: one record per (run, rank), id "RUN#RANK".
#include <fmt/format.h>
#include <algorithm>

#include "backends/common/chunkedcheckpoints.hpp"
#include "backends/pinecone/pineconeinternal.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pinecone::checkpoints {

namespace {

constexpr size_t k_chunk_raw_bytes = 29000;

chunked::RecordStore record_store(RecordOps& ops) {
  chunked::RecordStore s;
  s.location = ops.location;
  s.chunk_bytes = k_chunk_raw_bytes;
  s.put = [&ops](const std::vector<std::pair<std::string, json>>& records) {
    std::vector<std::string> bodies;
    for (const auto& [key, fields] : records) {
      if (const size_t n = metadata_bytes(fields); n > k_max_metadata_bytes) {
        // Only a manifest can be this large: its metrics and metadata are the user's.
        throw UsageError(
            fmt::format("checkpoint \"{}\": metrics and metadata take {} bytes, over pinecone's "
                        "{}-byte record limit",
                        key.substr(2), n, k_max_metadata_bytes));
      }
      bodies.push_back(placeholder_record(key, ops.dimension, fields));
    }
    ops.upsert(bodies);
  };
  s.get = [&ops](const std::vector<std::string>& keys) {
    std::map<std::string, json> out;
    for (auto& [id, rec] : ops.fetch(keys)) {
      out[id] = rec.value("metadata", json::object());
    }
    return out;
  };
  s.manifests = [&ops](const std::string& model) {
    std::vector<json> out;
    for (auto& rec : ops.fetch_prefix(model.empty() ? "m:" : "m:" + model + "@")) {
      json md = rec.value("metadata", json::object());
      if (model.empty() || md.value("model", std::string()) == model) {
        out.push_back(std::move(md));
      }
    }
    return out;
  };
  s.claims = [&ops](const std::string& model) {
    std::vector<json> out;
    for (auto& rec : ops.fetch_prefix("k:" + model + "@")) {  // '@' ends a model name
      out.push_back(rec.value("metadata", json::object()));
    }
    return out;
  };
  s.remove = [&ops](const std::vector<std::string>& keys) { ops.remove(keys); };
  s.settle = [&ops] { ops.settle(); };
  return s;
}

}  // namespace

std::string save(RecordOps& ops, const Checkpoint& checkpoint) {
  auto store = record_store(ops);
  return chunked::save(store, checkpoint);
}

Checkpoint load(RecordOps& ops, const std::string& path) {
  auto store = record_store(ops);
  return chunked::load(store, path);
}

std::vector<CheckpointInfo> list(RecordOps& ops, const std::string& model) {
  auto store = record_store(ops);
  return chunked::list(store, model);
}

bool remove(RecordOps& ops, const std::string& path) {
  auto store = record_store(ops);
  return chunked::remove(store, path);
}

void record_progress(RecordOps& ops, const ProgressRecord& r) {
  if (r.run.empty()) {
    throw UsageError("progress: run name is empty");
  }
  const json md = {{"run", r.run},
                   {"rank", r.rank},
                   {"epoch", r.epoch},
                   {"step", r.step},
                   {"metrics", metrics_to_json(r.metrics).dump()},
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
    p.metrics = metrics_from_json(json::parse(md.value("metrics", std::string("{}"))));
    p.updated_at = md.value("updated_at", std::string());
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return std::pair(a.run, a.rank) < std::pair(b.run, b.rank); });
  return out;
}

}  // namespace vstash::backends::pinecone::checkpoints
