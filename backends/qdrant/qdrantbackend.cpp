// SPDX-License-Identifier: MIT
// The Qdrant backend: one collection per dataset, REST through the shared HTTP layer.
//
// Mapping:
// - dataset D -> collection D (the profile's collection_name is the default dataset), or with
//   shard_key: auto the shard key D of a shared collection (qdrantshards.hpp); shard and
//   replica counts, read consistency and write ordering: qdrantdistribution.hpp. D's
//   spec and next_index are its catalog record (qdrantcatalog.hpp). next_index is reserved
//   there before rows are written, so an interrupted ingest never reuses an index.
// - rows -> points (qdrantpoints.hpp: ids, payload layout); checkpoints and progress ->
//   qdrantcheckpoints.cpp.
// - every write is sent with wait=true (Qdrant's default, false, returns before the change is
//   readable); upserts are cut by bytes (profile max_request_bytes, default 4 MiB, at most the
//   server's 32 MiB) and by count, and sent `parallel` at a time (qdrantwrites.cpp).
// - reads by position: when the dataset has no gaps (live rows == next_index) position p is
//   index p and rows are scrolled by an _idx range; otherwise the sorted live indices are
//   scrolled once and cached until the row count or next_index changes (qdrantreads.cpp).
// - filters: qdrantfilter.cpp translates them into Qdrant conditions that the server evaluates
//   exactly (rows carry _keys and _num for $exists and ranges; the catalog's filter_aids says
//   so). Only where that is impossible (a key holding '"', a dataset written before the aids)
//   or a strict-mode server refuses a filter on an unindexed metadata key (400 "Index
//   required"), the matching points are found by scrolling and Filter::matches
//   (qdrantsearch.cpp).
// - query: POST /points/query on servers >= 1.10, POST /points/search before. Qdrant's scores
//   already are vstash's (cosine similarity, dot product, L2 distance).
#include "backends/qdrant/qdrantbackend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "backends/qdrant/qdrantcheckpoints.hpp"
#include "backends/qdrant/qdrantdistribution.hpp"
#include "backends/qdrant/qdrantpoints.hpp"
#include "backends/qdrant/qdrantstore.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"

namespace vstash::backends::qdrant {

namespace {

http::ClientOptions client_options(const Profile& p) {
  http::ClientOptions o;
  const std::string host = p.get_string("host", "localhost");
  const int64_t port = p.get_int("port", 6333);
  if (port <= 0 || port > 65535) {
    throw UsageError(
        fmt::format("profile \"{}\" ({}): key \"port\": {} is not a TCP port", p.name(), p.source(), port));
  }
  o.server = fmt::format("{}:{}", host, port);
  o.service = "qdrant";
  o.timeout_ms = p.get_int("timeout_ms", o.timeout_ms);
  o.connect_timeout_ms = p.get_int("connect_timeout_ms", o.connect_timeout_ms);
  o.parallel = static_cast<int>(std::clamp<int64_t>(p.get_int("parallel", 4), 1, 64));
  o.max_attempts = static_cast<int>(std::clamp<int64_t>(p.get_int("max_attempts", 5), 1, 100));
  http::set_tls_files(o, p);
  if (p.has("api_key") && !p.get_string("api_key").empty()) {
    o.default_headers.emplace_back("api-key", p.get_string("api_key"));
  }
  return o;
}

std::string base_url(const Profile& p) {
  return fmt::format("{}://{}:{}", p.get_bool("https", false) ? "https" : "http", p.get_string("host", "localhost"),
                     p.get_int("port", 6333));
}

// Collection info for stats: status, segments and config; points_count is approximate
// (nullable), so the exact rows come from count.
void add_collection_info(const json& info, DatasetInfo& d) {
  d.extra["status"] = info.value("status", json());
  d.extra["optimizer_status"] = info.value("optimizer_status", json());
  d.extra["points_count"] = info.value("points_count", json());
  d.extra["indexed_vectors_count"] = info.value("indexed_vectors_count", json());
  d.extra["segments_count"] = info.value("segments_count", json());
  const json config = info.value("config", json::object());
  d.extra["vectors"] = config.value("params", json::object()).value("vectors", json());
  json indexed = json::array();
  const json schema = info.value("payload_schema", json::object());  // named: items() of a temporary dangles
  for (const auto& [key, field] : schema.items()) {
    indexed.push_back(key);
  }
  d.extra["payload_indexes"] = indexed;
}

}  // namespace

bool is_index_required(const UsageError& e) {
  return std::string_view(e.what()).find("Index required") != std::string_view::npos;
}

int64_t idx_of(const json& record) { return record.at("payload").at("_idx").get<int64_t>(); }

QdrantBackend::QdrantBackend(const Profile& profile)
    : m_client(client_options(profile), base_url(profile), profile.secrets(), distribution_from(profile)),
      m_datasets(m_client),
      m_catalog(m_datasets),
      m_checkpoints(checkpoint_records(m_client)),
      m_progress(progress_records(m_client)),
      m_max_bytes(profile.get_int("max_request_bytes", k_default_request_bytes)),
      m_parallel(std::clamp<int64_t>(profile.get_int("parallel", 4), 1, 64)) {
  if (m_max_bytes < 4096 || m_max_bytes > k_server_request_bytes) {
    throw UsageError(fmt::format("profile \"{}\" ({}): key \"max_request_bytes\": {} is outside 4096..{}",
                                 profile.name(), profile.source(), m_max_bytes, k_server_request_bytes));
  }
}

QdrantBackend::~QdrantBackend() {
  if (std::getenv("VSTASH_QDRANT_TIMINGS") != nullptr && m_rows_sent > 0) {
    std::fprintf(stderr, "qdrant timings: rows %lld bytes %lld encode_s %.3f send_s %.3f\n",
                 static_cast<long long>(m_rows_sent), static_cast<long long>(m_bytes_sent), m_encode_s, m_send_s);
  }
}

std::string QdrantBackend::id_key(const std::string& id) const { return point_key(point_id(id)); }

json QdrantBackend::placement_of(const DatasetSpec& spec) const {
  json out = {{"collection", m_datasets.collection_of(spec)}};
  if (m_client.distribution().shard_collection.empty()) {
    return out;
  }
  out["shard_key"] = spec.name;
  return out;
}

QdrantBackend::Record QdrantBackend::require(const std::string& dataset) { return m_catalog.require(dataset); }

void QdrantBackend::create_dataset(const DatasetSpec& spec) {
  validate_dataset_name(spec.name);
  if (spec.dimension() < 1 || spec.dimension() > 65536) {
    throw UsageError(fmt::format("dataset \"{}\": qdrant vectors have 1 to 65536 values, rows have {}", spec.name,
                                 spec.dimension()));
  }
  Record fresh;
  fresh.extra = {{"filter_aids", true}};  // every row of a new dataset carries _keys and _num
  if (!m_catalog.create(spec, fresh)) {
    m_datasets.ensure_collection(spec);  // a collection lost by an interrupted drop comes back
  }
}

std::optional<DatasetInfo> QdrantBackend::dataset_info(const std::string& dataset) {
  auto record = m_catalog.find(dataset);
  if (!record) {
    return std::nullopt;
  }
  DatasetInfo info;
  info.spec = record->spec;
  info.next_index = record->next_index;
  info.rows = count_all(dataset);
  info.extra = placement_of(record->spec);
  return info;
}

std::vector<DatasetInfo> QdrantBackend::list_datasets() {
  std::vector<DatasetInfo> out;
  for (const auto& record : m_datasets.list()) {
    DatasetInfo info;
    info.spec = record.spec;
    info.next_index = record.next_index;
    auto rows = m_client.call_or_missing(count_call(record.spec.name, json()));
    info.rows = rows ? rows->at("count").get<int64_t>() : 0;
    info.extra = placement_of(record.spec);
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.spec.name < b.spec.name; });
  return out;
}

bool QdrantBackend::drop_dataset(const std::string& dataset) {
  validate_dataset_name(dataset);
  const bool existed = m_datasets.remove(dataset);
  invalidate(dataset);
  return existed;
}

Stats QdrantBackend::stats() {
  Stats s;
  s.backend = "qdrant";
  s.location = m_client.location();
  s.datasets = list_datasets();
  for (auto& d : s.datasets) {
    if (auto info = m_client.call_or_missing({"GET", collection_path(m_datasets.collection_of(d.spec)), ""})) {
      add_collection_info(*info, d);
    } else {
      d.extra["status"] = "missing";
    }
  }
  for (const auto& c : m_checkpoints.list_checkpoints("")) {
    ++s.checkpoints_per_model[c.model];
  }
  const auto http_stats = m_client.stats();
  s.extra = {{"server_version", m_client.version_text()},
             {"http_requests", http_stats.requests},
             {"http_retries", http_stats.retries},
             {"max_request_bytes", m_max_bytes}};
  return s;
}

std::unique_ptr<Backend> create(const Profile& profile) { return std::make_unique<QdrantBackend>(profile); }

}  // namespace vstash::backends::qdrant
