// SPDX-License-Identifier: MIT
// Checkpoints and training progress as Pinecone records.
//
// Checkpoints are the records of backends/common/chunkedcheckpoints: manifest "m:MODEL@EPOCH"
// plus chunks "c:MODEL@EPOCH:TOKEN:A:C" of 29000 raw bytes (38668 base64 characters), so every
// record stays under the 40 KB metadata limit; record keys are the record ids and the fields
// their metadata. Pinecone applies one writer's upserts in order, so the manifest written last
// never names chunks a reader cannot find (once `wait` has let the writes become visible).
// Progress: one record per (run, rank), id "RUN#RANK".
#include "backends/pinecone/pineconecheckpoints.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "src/errors.hpp"

namespace vstash::backends::pinecone {

namespace {

constexpr size_t k_chunk_raw_bytes = 29000;
// Fetch replies sized for records of at most this many bytes (under the 40 KB metadata limit).
constexpr int64_t k_record_bytes = 42000;

// A checkpoint record whose metadata is over Pinecone's limit: only a manifest can be this
// large (its metrics and metadata are the user's).
void check_record_size(const std::string& key, const json& fields) {
  if (const size_t n = metadata_bytes(fields); n > k_max_metadata_bytes) {
    throw UsageError(
        fmt::format("checkpoint \"{}\": metrics and metadata take {} bytes, over pinecone's "
                    "{}-byte record limit",
                    key.substr(2), n, k_max_metadata_bytes));
  }
}

// The metadata of every record of the checkpoint namespace whose id starts with prefix.
std::vector<json> fields_with_prefix(Indexes& indexes, const std::string& prefix) {
  std::vector<json> out;
  for (auto& rec : indexes.fetch_all(indexes.home_ready(), indexes.checkpoint_ns(), prefix, k_record_bytes)) {
    out.push_back(rec.value("metadata", json::object()));
  }
  return out;
}

chunked::RecordStore record_store(Indexes& indexes) {
  chunked::RecordStore s;
  s.location = indexes.home().location();
  s.chunk_bytes = k_chunk_raw_bytes;
  s.put = [&indexes](const std::vector<std::pair<std::string, json>>& records) {
    const int64_t dimension = indexes.home_dimension();
    std::vector<std::string> bodies;
    for (const auto& [key, fields] : records) {
      check_record_size(key, fields);
      bodies.push_back(placeholder_record(key, dimension, fields));
    }
    indexes.upsert(indexes.home_ready(), indexes.checkpoint_ns(), bodies);
  };
  s.get = [&indexes](const std::vector<std::string>& keys) {
    std::map<std::string, json> out;
    for (auto& [id, rec] : indexes.fetch(indexes.home_ready(), indexes.checkpoint_ns(), keys, k_record_bytes)) {
      out[id] = rec.value("metadata", json::object());
    }
    return out;
  };
  s.manifests = [&indexes](const std::string& model) {
    std::vector<json> out;
    for (auto& md : fields_with_prefix(indexes, model.empty() ? "m:" : "m:" + model + "@")) {
      if (model.empty() || md.value("model", std::string()) == model) {
        out.push_back(std::move(md));
      }
    }
    return out;
  };
  s.claims = [&indexes](const std::string& model) {
    return fields_with_prefix(indexes, "k:" + model + "@");  // '@' ends a model name
  };
  s.remove = [&indexes](const std::vector<std::string>& keys) {
    indexes.remove(indexes.home_ready(), indexes.checkpoint_ns(), keys);
  };
  s.settle = [&indexes] { indexes.settle(); };
  return s;
}

}  // namespace

PineconeCheckpoints::PineconeCheckpoints(Indexes& indexes) : m_indexes(indexes), m_store(record_store(indexes)) {}

std::string PineconeCheckpoints::save_checkpoint(const Checkpoint& checkpoint) {
  m_indexes.home_ready();
  return chunked::save(m_store, checkpoint);
}

Checkpoint PineconeCheckpoints::load_checkpoint(const std::string& path) {
  m_indexes.home_ready();
  return chunked::load(m_store, path);
}

std::vector<CheckpointInfo> PineconeCheckpoints::list_checkpoints(const std::string& model) {
  m_indexes.home_ready();
  return chunked::list(m_store, model);
}

bool PineconeCheckpoints::delete_checkpoint(const std::string& path) {
  m_indexes.home_ready();
  return chunked::remove(m_store, path);
}

void PineconeProgress::record_progress(const ProgressRecord& r) {
  if (r.run.empty()) {
    throw UsageError("progress: run name is empty");
  }
  const json md = {{"run", r.run},
                   {"rank", r.rank},
                   {"epoch", r.epoch},
                   {"step", r.step},
                   {"metrics", metrics_to_json(r.metrics).dump()},
                   {"updated_at", now_rfc3339()}};
  const std::string id = stored_id(fmt::format("{}#{}", r.run, r.rank));
  m_indexes.upsert(m_indexes.home_ready(), m_indexes.progress_ns(),
                   {placeholder_record(id, m_indexes.home_dimension(), md)});
  m_indexes.settle();
}

std::vector<ProgressRecord> PineconeProgress::list_progress(const std::string& run) {
  std::vector<ProgressRecord> out;
  for (const auto& rec : m_indexes.fetch_all(m_indexes.home_ready(), m_indexes.progress_ns(),
                                             run.empty() ? "" : run + "#", k_record_bytes)) {
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

}  // namespace vstash::backends::pinecone
