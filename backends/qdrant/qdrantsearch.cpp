// SPDX-License-Identifier: MIT
// Search in a Qdrant dataset: query (POST /points/query on servers >= 1.10, /points/search
// before), count, and the client-side filter fallback they and delete_where share: where a
// filter cannot run on the server (qdrantfilter.hpp) or a strict-mode server refuses it for a
// key without a payload index, the matching points are found by scrolling in bounded pages
// and checking Filter::matches.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "backends/common/scoring.hpp"
#include "backends/qdrant/qdrantpoints.hpp"
#include "backends/qdrant/qdrantstore.hpp"
#include "src/errors.hpp"
#include "src/util/floatformat.hpp"

namespace vstash::backends::qdrant {

namespace {

constexpr int64_t k_fallback_page = 1000;  // points per page of a client-side filter

void check_query_vector(const std::string& dataset, const DatasetSpec& spec, const std::vector<float>& vector) {
  if (static_cast<int64_t>(vector.size()) != spec.dimension()) {
    throw UsageError(fmt::format("dataset \"{}\": query vector has {} values, rows have {}", dataset, vector.size(),
                                 spec.dimension()));
  }
  for (float v : vector) {
    if (!std::isfinite(v)) {
      throw UsageError(fmt::format("dataset \"{}\": query vector holds NaN or Inf", dataset));
    }
  }
}

// The request body's members after the vector: limit, payload and vector selection, search
// params (`exact` skips the HNSW index, `hnsw_ef` widens its beam: query --exact/--ef), filter.
json search_members(const QueryOptions& options, bool blob, const json& filter) {
  const bool want_values = options.include_values;
  // Payload always carries _id/_idx (and label); the exact sample only when values are asked.
  const json with_payload = want_values && blob ? json(true) : json{{"exclude", json::array({"_data"})}};
  json rest = {{"limit", options.top_k}, {"with_payload", with_payload}, {"with_vector", want_values && !blob}};
  if (options.exact || options.ef) {
    json params = json::object();
    if (options.exact) {
      params["exact"] = true;
    }
    if (options.ef) {
      params["hnsw_ef"] = *options.ef;
    }
    rest["params"] = std::move(params);
  }
  if (filter.is_object() && !filter.empty()) {
    rest["filter"] = filter;
  }
  return rest;
}

// Hits from scored points, best first.
std::vector<QueryHit> hits_of(const DatasetSpec& spec, const json& points, const QueryOptions& options) {
  std::vector<const json*> records;
  for (const auto& p : points) {
    records.push_back(&p);
  }
  const bool want_values = options.include_values;
  const RowBatch rows = decode_records(spec, records, want_values);
  const Array f32 = want_values ? rows.data.to_float32() : Array();
  const auto dim = static_cast<size_t>(spec.dimension());
  std::vector<QueryHit> hits;
  for (size_t i = 0; i < rows.size(); ++i) {
    QueryHit hit;
    hit.id = rows.ids[i];
    hit.index = rows.indices[i];
    hit.score = records[i]->value("score", 0.0);
    if (want_values) {
      hit.values = std::vector<float>(f32.as<float>() + i * dim, f32.as<float>() + (i + 1) * dim);
    }
    if (options.include_metadata) {
      hit.metadata = rows.metadata[i];
    }
    hits.push_back(std::move(hit));
  }
  sort_hits(spec.metric, hits);
  return hits;
}

}  // namespace

std::vector<QueryHit> QdrantBackend::query(const std::string& dataset, const std::vector<float>& vector,
                                           const QueryOptions& options) {
  const Record record = require(dataset);
  check_query_vector(dataset, record.spec, vector);
  if (options.top_k <= 0) {
    return {};
  }
  const bool filtered = options.filter != nullptr && !options.filter->empty();
  const TranslatedFilter tf = translate_filter(options.filter, has_filter_aids(record), &record.spec);
  std::optional<json> points;
  if (!filtered || tf.exact) {
    try {
      points = search_points(dataset, vector, options, record, tf.filter);
    } catch (const UsageError& e) {
      if (!filtered || !is_index_required(e)) {
        throw;
      }
    }
  }
  if (!points) {
    points = search_by_pages(dataset, vector, options, record, tf);
  }
  return hits_of(record.spec, *points, options);
}

// One search request; the vector is spliced in as text (float formatting is exact and fast).
json QdrantBackend::search_points(const std::string& dataset, const std::vector<float>& vector,
                                  const QueryOptions& options, const Record& record, const json& filter) {
  const bool modern = m_client.version() >= std::pair(1, 10);
  std::string body = modern ? "{\"query\":" : "{\"vector\":";
  util::append_float_array(body, vector.data(), vector.size());
  const std::string tail = search_members(options, needs_data_blob(record.spec), filter).dump();
  body += ",";
  body.append(tail, 1, std::string::npos);  // splice: the other members after the vector
  const json result =
      m_client.call({"POST", collection_path(dataset) + (modern ? "/points/query" : "/points/search"), body});
  return modern ? result.at("points") : result;
}

// The filter on the client: each page's matches are searched by has_id (a bounded list) and
// the best top_k kept.
json QdrantBackend::search_by_pages(const std::string& dataset, const std::vector<float>& vector,
                                    const QueryOptions& options, const Record& record, const TranslatedFilter& tf) {
  const bool lower_is_better = record.spec.metric == Metric::euclidean;
  json points = json::array();
  for_each_match_page(dataset, *options.filter, tf, [&](const std::vector<json>& ids) {
    for (auto& p :
         search_points(dataset, vector, options, record, json{{"must", json::array({json{{"has_id", ids}}})}})) {
      points.push_back(std::move(p));
    }
    std::stable_sort(points.begin(), points.end(), [&](const json& a, const json& b) {
      const double sa = a.value("score", 0.0);
      const double sb = b.value("score", 0.0);
      return lower_is_better ? sa < sb : sa > sb;
    });
    if (static_cast<int64_t>(points.size()) > options.top_k) {
      points.erase(points.begin() + options.top_k, points.end());
    }
  });
  return points;
}

int64_t QdrantBackend::count(const std::string& dataset, const Filter* filter) {
  const Record record = require(dataset);
  if (filter == nullptr || filter->empty()) {
    return count_all(dataset);
  }
  const TranslatedFilter tf = translate_filter(filter, has_filter_aids(record), &record.spec);
  if (tf.exact) {
    try {
      return m_client.call(count_call(dataset, tf.filter)).at("count").get<int64_t>();
    } catch (const UsageError& e) {
      if (!is_index_required(e)) {
        throw;
      }
    }
  }
  int64_t n = 0;
  for_each_match_page(dataset, *filter, tf,
                      [&](const std::vector<json>& ids) { n += static_cast<int64_t>(ids.size()); });
  return n;
}

// Scrolls k_fallback_page points at a time (with the translated superset filter when the
// server accepts it), checks each row's metadata with Filter::matches, and hands each page's
// matching point ids to fn (pages with none are skipped). Memory and every request stay
// bounded however many rows match.
void QdrantBackend::for_each_match_page(const std::string& dataset, const Filter& filter, const TranslatedFilter& tf,
                                        const std::function<void(const std::vector<json>&)>& fn) {
  json body = {
      {"limit", k_fallback_page}, {"with_payload", json::array({"metadata", "label"})}, {"with_vector", false}};
  const DatasetSpec spec = filter.uses_label() ? require(dataset).spec : DatasetSpec{};
  const std::string path = collection_path(dataset) + "/points/scroll";
  if (!tf.filter.empty()) {
    body["filter"] = tf.filter;
  }
  for (;;) {
    json result;
    try {
      result = m_client.call({"POST", path, body.dump()});
    } catch (const UsageError& e) {
      if (!body.contains("filter") || !is_index_required(e)) {
        throw;
      }
      body.erase("filter");  // a strict server without the index: scroll everything instead
      body.erase("offset");
      continue;
    }
    std::vector<json> ids;
    for (auto& rec : result.at("points")) {
      const json payload = rec.value("payload", json::object());
      if (filter.matches(payload.value("metadata", json::object()), payload_label(payload, filter, spec))) {
        ids.push_back(std::move(rec.at("id")));
      }
    }
    if (!ids.empty()) {
      fn(ids);
    }
    const json next = result.value("next_page_offset", json());
    if (next.is_null()) {
      return;
    }
    body["offset"] = next;
  }
}

}  // namespace vstash::backends::qdrant
