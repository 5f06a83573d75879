// SPDX-License-Identifier: MIT
// Checkpoints and training progress as Pinecone records.
//
// Checkpoints are the records of backends/common/chunkedcheckpoints: manifest "m:MODEL@EPOCH"
// plus chunks "c:MODEL@EPOCH:TOKEN:A:C" of 29000 raw bytes (38668 base64 characters), so every
// record stays under the 40 KB metadata limit; record keys are the record ids and the fields
// their metadata. Pinecone applies one writer's upserts in order, so the manifest written last
// never names chunks a reader cannot find (once `wait` has let the writes become visible).
// Progress: one record per (run, rank), id "RUN#RANK" (backends/common/recordprogress).
// Records hold no searchable data: their vector is a placeholder of the home index's dimension.
#include "backends/pinecone/pineconecheckpoints.hpp"

#include <fmt/format.h>

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

// The metadata of every record of namespace ns whose id starts with prefix.
std::vector<json> fields_with_prefix(Indexes& indexes, const std::string& ns, const std::string& prefix) {
  std::vector<json> out;
  for (auto& rec : indexes.fetch_all(indexes.home_ready(), ns, prefix, k_record_bytes)) {
    out.push_back(rec.value("metadata", json::object()));
  }
  return out;
}

}  // namespace

chunked::RecordStore checkpoint_records(Indexes& indexes) {
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
    for (auto& md : fields_with_prefix(indexes, indexes.checkpoint_ns(), model.empty() ? "m:" : "m:" + model + "@")) {
      if (model.empty() || md.value("model", std::string()) == model) {
        out.push_back(std::move(md));
      }
    }
    return out;
  };
  s.claims = [&indexes](const std::string& model) {
    return fields_with_prefix(indexes, indexes.checkpoint_ns(), "k:" + model + "@");  // '@' ends a model name
  };
  s.remove = [&indexes](const std::vector<std::string>& keys) {
    indexes.remove(indexes.home_ready(), indexes.checkpoint_ns(), keys);
  };
  s.settle = [&indexes] { indexes.settle(); };
  return s;
}

records::ProgressRecords progress_records(Indexes& indexes) {
  records::ProgressRecords p;
  p.put = [&indexes](const std::string& key, const json& fields) {
    const std::string record = placeholder_record(stored_id(key), indexes.home_dimension(), fields);
    indexes.upsert(indexes.home_ready(), indexes.progress_ns(), {record});
  };
  p.list = [&indexes](const std::string& run) {
    return fields_with_prefix(indexes, indexes.progress_ns(), run.empty() ? "" : run + "#");
  };
  p.settle = [&indexes] { indexes.settle(); };
  return p;
}

}  // namespace vstash::backends::pinecone
