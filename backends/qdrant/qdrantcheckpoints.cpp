// SPDX-License-Identifier: MIT
// Checkpoints and training progress as Qdrant points.
//
// Collection __vstash_checkpoints (vector size 1, Dot; every point's vector is [1]) holds the
// records of backends/common/chunkedcheckpoints (manifest + chunks of at most 2 MiB); record
// key K is point id uuid5("checkpoint:" + K) and its fields are the point's payload (also
// the claims of a save without overwrite).
// Collection __vstash_progress: one point per (run, rank), id uuid5("progress:RUN#RANK"), the
// fields of backends/common/recordprogress as its payload.
// kind, model and run carry keyword payload indexes, so strict-mode servers accept the filters.
#include "backends/qdrant/qdrantcheckpoints.hpp"

#include <mutex>
#include <set>

#include "backends/qdrant/qdrantpoints.hpp"
#include "src/errors.hpp"
#include "src/util/uuid.hpp"

namespace vstash::backends::qdrant {

namespace {

constexpr size_t k_chunk_raw_bytes = 2 * 1024 * 1024;

std::string ckpt() { return std::string(k_checkpoint_collection); }
std::string prog() { return std::string(k_progress_collection); }

json pid(const std::string& key) { return json(util::uuid_v5(k_id_namespace, key)); }
json record_id(const std::string& key) { return pid("checkpoint:" + key); }

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
    return scroll_all(client, collection,
                      json{{"filter", filter}, {"limit", 1000}, {"with_payload", true}, {"with_vector", false}});
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

}  // namespace

chunked::RecordStore checkpoint_records(RestClient& client) {
  chunked::RecordStore s;
  s.location = client.location();
  s.chunk_bytes = k_chunk_raw_bytes;
  s.put = [&client](const std::vector<std::pair<std::string, json>>& records) {
    ensure(client, ckpt(), {"kind", "model"});
    std::vector<std::string> bodies;  // one point per request: a chunk is up to 2.7 MB of JSON
    for (const auto& [key, fields] : records) {
      bodies.push_back(points_body({{record_id(key), fields}}));
    }
    upsert_bodies(client, ckpt(), bodies);
  };
  s.get = [&client](const std::vector<std::string>& keys) {
    std::map<std::string, std::string> key_of;  // point key -> record key
    std::vector<json> ids;
    for (const auto& k : keys) {
      ids.push_back(record_id(k));
      key_of[point_key(ids.back())] = k;
    }
    std::map<std::string, json> out;
    for (const auto& rec : retrieve_or_empty(client, ckpt(), ids)) {
      if (auto it = key_of.find(point_key(rec.at("id"))); it != key_of.end()) {
        out[it->second] = rec.value("payload", json::object());
      }
    }
    return out;
  };
  s.manifests = [&client](const std::string& model) {
    json must = json::array({match("kind", "manifest")});
    if (!model.empty()) {
      must.push_back(match("model", model));
    }
    std::vector<json> out;
    for (auto& rec : scroll_or_empty(client, ckpt(), json{{"must", must}})) {
      out.push_back(rec.value("payload", json::object()));
    }
    return out;
  };
  s.claims = [&client](const std::string& model) {
    std::vector<json> out;
    for (auto& rec : scroll_or_empty(client, ckpt(), json{{"must", {match("kind", "claim"), match("model", model)}}})) {
      out.push_back(rec.value("payload", json::object()));
    }
    return out;
  };
  s.remove = [&client](const std::vector<std::string>& keys) {
    std::vector<json> ids;
    for (const auto& k : keys) {
      ids.push_back(record_id(k));
    }
    delete_points(client, ckpt(), ids);
  };
  return s;  // writes use wait=true: visible on return, nothing to settle
}

records::ProgressRecords progress_records(RestClient& client) {
  records::ProgressRecords r;
  r.put = [&client](const std::string& key, const json& fields) {
    ensure(client, prog(), {"run"});
    upsert_bodies(client, prog(), {points_body({{pid("progress:" + key), fields}})});
  };
  r.list = [&client](const std::string& run) {
    const json filter = run.empty() ? json::object() : json{{"must", json::array({match("run", run)})}};
    std::vector<json> out;
    for (const auto& rec : scroll_or_empty(client, prog(), filter)) {
      out.push_back(rec.value("payload", json::object()));
    }
    return out;
  };
  return r;  // writes use wait=true: visible on return, nothing to settle
}

}  // namespace vstash::backends::qdrant
