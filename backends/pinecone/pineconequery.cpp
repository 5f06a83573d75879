// SPDX-License-Identifier: MIT
// The Pinecone store's nearest-neighbour query. Pinecone's euclidean score is the squared L2
// distance; it is converted to L2. A reply that would pass the 4 MiB cap asks for ids and
// scores only, and the records are fetched in chunks.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "backends/common/scoring.hpp"
#include "backends/pinecone/pineconestore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pinecone {

namespace {

// What Pinecone's query API cannot do, and a vector or top_k it would refuse.
void check_query(const CatalogEntry& entry, const std::vector<float>& vector, const QueryOptions& options) {
  const std::string& dataset = entry.spec.name;
  if (static_cast<int64_t>(vector.size()) != entry.spec.dimension()) {
    throw UsageError(fmt::format("dataset \"{}\": query vector has {} values, rows have {}", dataset, vector.size(),
                                 entry.spec.dimension()));
  }
  if (options.top_k > k_max_top_k) {
    throw UsageError(
        fmt::format("dataset \"{}\": top_k {} is over pinecone's limit of {}", dataset, options.top_k, k_max_top_k));
  }
  if (options.top_k <= 0) {
    return;
  }
  for (float v : vector) {
    if (!std::isfinite(v)) {
      throw UsageError(fmt::format("dataset \"{}\": query vector holds NaN or Inf", dataset));
    }
  }
}

// One match (with its record, when the reply was too big to carry them) as a hit.
QueryHit hit_of(const CatalogEntry& entry, const json& match, json rec, const QueryOptions& options) {
  const bool exact = keeps_exact_blob(entry.spec);
  if (!options.include_values || exact) {
    rec.erase("values");
  }
  if (!rec.contains("values") && !exact) {
    rec["values"] = json::array();
    rec["metadata"]["_zero"] = true;  // values not requested: decode without them
  }
  DecodedRow row = decode_row(entry.spec, rec);
  QueryHit hit;
  hit.id = row.id;
  hit.index = row.index;
  const double s = match.value("score", 0.0);
  hit.score = entry.spec.metric == Metric::euclidean ? std::sqrt(std::max(0.0, s)) : s;
  if (options.include_values) {
    const Array f32 = row.sample.to_float32();
    hit.values = std::vector<float>(f32.as<float>(), f32.as<float>() + f32.size());
  }
  if (options.include_metadata) {
    hit.metadata = row.metadata;
  }
  return hit;
}

}  // namespace

std::vector<QueryHit> PineconeBackend::query(const std::string& dataset, const std::vector<float>& vector,
                                             const QueryOptions& options) {
  // Pinecone's query API has no exact mode and no search-breadth setting.
  if (options.exact) {
    throw UsageError("--exact is not supported by pinecone");
  }
  if (options.ef) {
    throw UsageError("--ef is not supported by pinecone");
  }
  const CatalogEntry entry = require(dataset);
  check_query(entry, vector, options);
  if (options.top_k <= 0) {
    return {};
  }
  const std::string ns = m_indexes.namespace_of(dataset);
  const json f = options.filter ? translate_filter(*options.filter, &entry) : json();
  const bool small = options.top_k * std::max<int64_t>(entry.row_bytes, 1) <= static_cast<int64_t>(k_response_budget);
  json body = {{"namespace", ns},
               {"topK", options.top_k},
               {"vector", vector},
               {"includeValues", small && options.include_values && !keeps_exact_blob(entry.spec)},
               {"includeMetadata", small}};
  if (!f.is_null()) {
    body["filter"] = f;
  }
  Connection& c = m_indexes.of(entry.spec);
  const json matches = c.post("/query", body.dump()).parsed["matches"];
  std::map<std::string, json> records;
  if (!small) {
    std::vector<std::string> ids;
    for (const auto& m : matches) {
      ids.push_back(m.value("id", std::string()));
    }
    records = m_indexes.fetch(c, ns, ids, entry.row_bytes);
  }
  std::vector<QueryHit> hits;
  for (const auto& m : matches) {
    auto it = records.find(m.value("id", std::string()));
    if (!small && it == records.end()) {
      continue;  // deleted between the query and the fetch
    }
    hits.push_back(hit_of(entry, m, small ? m : it->second, options));
  }
  sort_hits(entry.spec.metric, hits);
  return hits;
}

}  // namespace vstash::backends::pinecone
