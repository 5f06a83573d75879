// SPDX-License-Identifier: MIT
// Custom sharding (profile `shard_key: auto`, docs/backends.md "Scaling out"): datasets of the
// same dimension and metric share one collection created with `sharding_method: custom`, each
// dataset on its own shard key, its name. The rest of the backend keeps addressing dataset D
// as collection D; the client hands every call through place(), which sends a point call of
// a placed dataset to the shared collection with `shard_key` in its body (every point
// operation's body takes one in the spec: PointsList, PointsSelector, SetPayload,
// ScrollRequest, CountRequest, PointRequest, QueryRequest, SearchRequest).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace vstash::backends::qdrant {

class ShardPlacement {
 public:
  // collection_template: "" (off: one collection per dataset) or a collection name in which
  // {dimension} and {metric} (the Qdrant distance in lower case) are replaced.
  explicit ShardPlacement(std::string collection_template) : m_template(std::move(collection_template)) {}

  bool enabled() const { return !m_template.empty(); }
  // The shared collection of a dataset of this vector size and Qdrant distance ("Cosine").
  std::string collection_for(int64_t dimension, const std::string& distance) const;
  // From now on, point calls on dataset go to collection under shard key dataset.
  void remember(const std::string& dataset, const std::string& collection);
  void forget(const std::string& dataset);
  // Rewrites path ("/collections/<escaped D>/points...") and body (a JSON object, or empty)
  // when D is placed; leaves every other call as it is.
  void place(std::string& path, std::string& body) const;

 private:
  struct Placed {
    std::string collection_path;  // "/collections/<escaped collection>"
    std::string shard_key;        // the dataset name as JSON text
  };
  std::string m_template;
  mutable std::mutex m_mutex;
  std::map<std::string, Placed> m_placed;  // by "/collections/<escaped dataset>"
};

}  // namespace vstash::backends::qdrant
