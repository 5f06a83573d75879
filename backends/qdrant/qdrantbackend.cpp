// SPDX-License-Identifier: MIT
// The Qdrant backend: one collection per dataset, REST through the shared HTTP layer.
//
// Mapping:
// - dataset D -> collection D (the profile's collection_name is the default dataset), one
//   unnamed vector of the row size with Distance Cosine / Euclid / Dot. Payload indexes on
//   _id (keyword), _idx (integer) and label (integer or float, scalar labels) are created with
//   the collection, so servers in strict mode accept the filters vstash itself sends.
// - D's spec and next_index live in the reserved collection __vstash_catalog, one point per
//   dataset (id uuid5("dataset:D"), vector [1]). next_index is reserved there before rows are
//   written, so an interrupted ingest never reuses an index. Writers in several processes are
//   not coordinated (read-modify-write).
// - rows -> points (qdrantpoints.hpp: ids, payload layout); checkpoints and progress ->
//   qdrantcheckpoints.cpp.
// - every write is sent with wait=true (Qdrant's default, false, returns before the change is
//   readable); upserts are cut by bytes (profile max_request_bytes, default 4 MiB, at most the
//   server's 32 MiB) and by count, and sent `parallel` at a time.
// - reads by position: when the dataset has no gaps (live rows == next_index) position p is
//   index p and rows are scrolled by an _idx range; otherwise the sorted live indices are
//   scrolled once and cached until the row count or next_index changes.
// - filters: qdrantfilter.cpp translates them into Qdrant conditions that the server evaluates
//   exactly (rows carry _keys and _num for $exists and ranges; the catalog's filter_aids says
//   so). Only where that is impossible (a key holding '"', a dataset written before the aids)
//   or a strict-mode server refuses a filter on an unindexed metadata key (400 "Index
//   required"), the matching points are found by scrolling and Filter::matches.
// - query: POST /points/query on servers >= 1.10, POST /points/search before. Qdrant's scores
//   already are vstash's (cosine similarity, dot product, L2 distance).
#include "backends/qdrant/qdrantbackend.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "backends/common/rowcheck.hpp"
#include "backends/common/scoring.hpp"
#include "backends/qdrant/qdrantcheckpoints.hpp"
#include "backends/qdrant/qdrantclient.hpp"
#include "backends/qdrant/qdrantfilter.hpp"
#include "backends/qdrant/qdrantpoints.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "src/util/floatformat.hpp"
#include "src/util/uuid.hpp"

namespace vstash::backends::qdrant {

namespace {

constexpr std::string_view k_catalog = "__vstash_catalog";
constexpr std::string_view k_reserved_prefix = "__vstash_";
constexpr int64_t k_default_request_bytes = 4 * 1024 * 1024;
constexpr int64_t k_server_request_bytes = 32 * 1024 * 1024;  // service.max_request_size_mb default
constexpr size_t k_points_per_request = 1000;
constexpr int64_t k_rows_per_read = 1000;
constexpr int64_t k_scroll_page = 10000;
constexpr int64_t k_fallback_page = 1000;  // points per page of a client-side filter

struct CatalogEntry {
  DatasetSpec spec;
  int64_t next_index = 0;
  // Every row carries _keys and _num (qdrantpoints.hpp): true for datasets created since they
  // exist; $exists and range filters are then exact on the server.
  bool filter_aids = false;
};

std::string describe_spec(const DatasetSpec& s) {
  std::string out = fmt::format("{} {} {}", dtype_name(s.dtype), shape_to_string(s.row_shape), metric_name(s.metric));
  if (s.label_dtype) {
    out += fmt::format(", labels {} {}", dtype_name(*s.label_dtype), shape_to_string(s.label_shape));
  }
  return out;
}

bool compatible(const DatasetSpec& a, const DatasetSpec& b) {
  return a.dtype == b.dtype && a.row_shape == b.row_shape && a.label_dtype == b.label_dtype &&
         a.label_shape == b.label_shape && a.metric == b.metric;
}

// Qdrant collection names: 1..255 bytes, none of < > : " / \ | ? * NUL or 0x1F.
void validate_dataset_name(const std::string& name) {
  if (name.empty() || name.size() > 255) {
    throw UsageError(fmt::format("dataset \"{}\": a qdrant collection name has 1 to 255 bytes", name));
  }
  for (char c : name) {
    if (std::string_view("<>:\"/\\|?*").find(c) != std::string_view::npos || c == '\0' || c == '\x1f') {
      throw UsageError(fmt::format("dataset \"{}\": a qdrant collection name cannot contain '{}'", name,
                                   c == '\0' ? std::string("\\0") : std::string(1, c)));
    }
  }
  if (name.rfind(k_reserved_prefix, 0) == 0) {
    throw UsageError(fmt::format("dataset \"{}\": names starting with \"{}\" are reserved", name, k_reserved_prefix));
  }
}

json catalog_point_id(const std::string& dataset) { return json(util::uuid_v5(k_id_namespace, "dataset:" + dataset)); }

std::string label_index_schema(DType t) {
  return t == DType::f16 || t == DType::f32 || t == DType::f64 ? "float" : "integer";
}

// A 400 from a strict-mode server for a filter on a key without a payload index.
bool is_index_required(const UsageError& e) {
  return std::string_view(e.what()).find("Index required") != std::string_view::npos;
}

json idx_range(int64_t lo, int64_t hi) {
  return json{{"must", json::array({json{{"key", "_idx"}, {"range", {{"gte", lo}, {"lt", hi}}}}})}};
}

std::vector<const json*> pointers(const std::vector<json>& records) {
  std::vector<const json*> out;
  out.reserve(records.size());
  for (const auto& r : records) {
    out.push_back(&r);
  }
  return out;
}

int64_t idx_of(const json& record) { return record.at("payload").at("_idx").get<int64_t>(); }

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

class QdrantBackend final : public Backend, public CheckpointStore, public ProgressStore {
 public:
  CheckpointStore& checkpoints() override { return *this; }
  ProgressStore& progress() override { return *this; }
  explicit QdrantBackend(const Profile& profile)
      : m_client(client_options(profile), base_url(profile), profile.secrets()),
        m_max_bytes(profile.get_int("max_request_bytes", k_default_request_bytes)),
        m_parallel(std::clamp<int64_t>(profile.get_int("parallel", 4), 1, 64)) {
    if (m_max_bytes < 4096 || m_max_bytes > k_server_request_bytes) {
      throw UsageError(fmt::format("profile \"{}\" ({}): key \"max_request_bytes\": {} is outside 4096..{}",
                                   profile.name(), profile.source(), m_max_bytes, k_server_request_bytes));
    }
  }

  // With VSTASH_QDRANT_TIMINGS set, reports where write_rows spent its time (bench/qdrant_bench.sh).
  ~QdrantBackend() override {
    if (std::getenv("VSTASH_QDRANT_TIMINGS") != nullptr && m_rows_sent > 0) {
      std::fprintf(stderr, "qdrant timings: rows %lld bytes %lld encode_s %.3f send_s %.3f\n",
                   static_cast<long long>(m_rows_sent), static_cast<long long>(m_bytes_sent), m_encode_s, m_send_s);
    }
  }

  std::string kind() const override { return "qdrant"; }

  // --- datasets -------------------------------------------------------------------------
  void create_dataset(const DatasetSpec& spec) override {
    validate_dataset_name(spec.name);
    if (spec.dimension() < 1 || spec.dimension() > 65536) {
      throw UsageError(fmt::format("dataset \"{}\": qdrant vectors have 1 to 65536 values, rows have {}", spec.name,
                                   spec.dimension()));
    }
    if (auto existing = load_catalog(spec.name)) {
      if (!compatible(existing->spec, spec)) {
        throw ConflictError(fmt::format("{}: dataset \"{}\" exists as {}; requested {}", m_client.location(), spec.name,
                                        describe_spec(existing->spec), describe_spec(spec)));
      }
      ensure_collection(spec);
      json merged = existing->spec.metadata.is_object() ? existing->spec.metadata : json::object();
      merged.update(spec.metadata.is_object() ? spec.metadata : json::object());
      if (merged != existing->spec.metadata) {
        existing->spec.metadata = merged;
        save_catalog(*existing);
      }
      return;
    }
    ensure_collection(spec);
    save_catalog(CatalogEntry{spec, 0, true});
  }

  std::optional<DatasetInfo> dataset_info(const std::string& dataset) override {
    auto entry = load_catalog(dataset);
    if (!entry) {
      return std::nullopt;
    }
    DatasetInfo info;
    info.spec = entry->spec;
    info.next_index = entry->next_index;
    info.rows = count_all(dataset);
    info.extra = {{"collection", dataset}};
    return info;
  }

  std::vector<DatasetInfo> list_datasets() override {
    std::vector<DatasetInfo> out;
    for (const auto& rec : scroll_catalog()) {
      CatalogEntry e = parse_catalog(rec);
      DatasetInfo info;
      info.spec = e.spec;
      info.next_index = e.next_index;
      auto rows = m_client.call_or_missing(count_call(e.spec.name, json()));
      info.rows = rows ? rows->at("count").get<int64_t>() : 0;
      info.extra = {{"collection", e.spec.name}};
      out.push_back(std::move(info));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.spec.name < b.spec.name; });
    return out;
  }

  bool drop_dataset(const std::string& dataset) override {
    validate_dataset_name(dataset);
    const bool existed = load_catalog(dataset).has_value();
    if (existed) {
      delete_points(m_client, std::string(k_catalog), {catalog_point_id(dataset)});
    }
    // Also removes a collection left behind by an interrupted drop. 200 with false if absent.
    m_client.call({"DELETE", collection_path(dataset), ""});
    invalidate(dataset);
    forget_collection(dataset);
    return existed;
  }

  // --- rows -----------------------------------------------------------------------------
  void write_rows(const std::string& dataset, const RowBatch& batch) override {
    CatalogEntry entry = require(dataset);
    check_batch(entry.spec, batch);
    if (batch.size() == 0) {
      return;
    }
    std::vector<json> pids;
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < batch.size(); ++i) {
      pids.push_back(point_id(batch.ids[i]));
      auto [it, fresh] = seen.emplace(point_key(pids.back()), i);
      if (!fresh) {
        throw UsageError(
            fmt::format("dataset \"{}\": ids \"{}\" and \"{}\" name the same qdrant point (UUIDs "
                        "compare case-insensitively)",
                        dataset, batch.ids[it->second], batch.ids[i]));
      }
    }
    std::vector<int64_t> indices = batch.indices;
    if (indices.empty()) {
      // An id that exists keeps its index (upsert replaces the row in place).
      std::map<std::string, int64_t> existing;
      for (const auto& rec : retrieve(m_client, dataset, pids, json::array({"_idx"}), false)) {
        existing[point_key(rec.at("id"))] = idx_of(rec);
      }
      int64_t next = entry.next_index;
      for (const auto& pid : pids) {
        auto it = existing.find(point_key(pid));
        indices.push_back(it != existing.end() ? it->second : next++);
      }
    }
    int64_t next_index = entry.next_index;
    for (int64_t idx : indices) {
      if (idx < 0) {
        throw UsageError(fmt::format("dataset \"{}\": row index {} is negative", dataset, idx));
      }
      next_index = std::max(next_index, idx + 1);
    }
    if (next_index != entry.next_index) {
      entry.next_index = next_index;
      save_catalog(entry);  // reserve the indices before any row uses them
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto bodies = pack_points(encode_parallel(entry.spec, batch, indices), k_points_per_request,
                                    static_cast<size_t>(m_max_bytes));
    const auto t1 = std::chrono::steady_clock::now();
    upsert_bodies(m_client, dataset, bodies);
    const auto t2 = std::chrono::steady_clock::now();
    m_encode_s += std::chrono::duration<double>(t1 - t0).count();
    m_send_s += std::chrono::duration<double>(t2 - t1).count();
    m_rows_sent += static_cast<int64_t>(batch.size());
    for (const auto& b : bodies) {
      m_bytes_sent += static_cast<int64_t>(b.size());
    }
    invalidate(dataset);
  }

  RowBatch read_rows(const std::string& dataset, int64_t offset, int64_t count) override {
    const CatalogEntry entry = require(dataset);
    if (offset < 0 || count < 0) {
      throw UsageError(fmt::format("dataset \"{}\": offset and count must not be negative", dataset));
    }
    const int64_t live = count_all(dataset);
    const int64_t lo = std::min(offset, live);
    const int64_t hi = std::min(live, offset + count);
    if (live == entry.next_index) {
      return rows_in_range(entry, lo, hi);
    }
    const auto& all = live_indices(entry, live);
    return rows_at(entry, std::vector<int64_t>(all.begin() + lo, all.begin() + hi));
  }

  RowBatch read_positions(const std::string& dataset, const std::vector<int64_t>& positions) override {
    const CatalogEntry entry = require(dataset);
    const int64_t live = count_all(dataset);
    for (int64_t p : positions) {
      if (p < 0 || p >= live) {
        throw UsageError(fmt::format("dataset \"{}\": position {} is out of range ({} rows)", dataset, p, live));
      }
    }
    if (live == entry.next_index) {
      return rows_at(entry, positions);
    }
    const auto& all = live_indices(entry, live);
    std::vector<int64_t> indices;
    indices.reserve(positions.size());
    for (int64_t p : positions) {
      indices.push_back(all[static_cast<size_t>(p)]);
    }
    return rows_at(entry, indices);
  }

  RowBatch fetch(const std::string& dataset, const std::vector<std::string>& ids) override {
    const CatalogEntry entry = require(dataset);
    std::vector<json> pids;
    std::set<std::string> keys;
    for (const auto& id : ids) {
      json pid = point_id(id);
      if (keys.insert(point_key(pid)).second) {
        pids.push_back(std::move(pid));
      }
    }
    const auto records = retrieve(m_client, dataset, pids, true, !needs_data_blob(entry.spec));
    std::map<std::string, const json*> by_key;
    for (const auto& r : records) {
      by_key[point_key(r.at("id"))] = &r;
    }
    std::vector<const json*> ordered;
    for (const auto& id : ids) {
      if (auto it = by_key.find(point_key(point_id(id))); it != by_key.end()) {
        ordered.push_back(it->second);
      }
    }
    return decode_records(entry.spec, ordered, true);
  }

  std::string id_key(const std::string& id) const override { return point_key(point_id(id)); }

  void update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                  const std::optional<json>& metadata) override {
    const CatalogEntry entry = require(dataset);
    const json pid = point_id(id);
    const auto found = retrieve(m_client, dataset, {pid}, true, !needs_data_blob(entry.spec));
    if (found.empty()) {
      throw NotFoundError(
          fmt::format("{}: dataset \"{}\": row \"{}\" does not exist", m_client.location(), dataset, id));
    }
    RowBatch row = decode_records(entry.spec, {&found[0]}, sample.has_value());
    if (metadata) {
      if (!metadata->is_object()) {
        throw UsageError(fmt::format("dataset \"{}\": row \"{}\": metadata must be a JSON object", dataset, id));
      }
      json merged = row.metadata[0].is_object() ? row.metadata[0] : json::object();
      for (const auto& [k, v] : metadata->items()) {
        if (v.is_null()) {
          merged.erase(k);
        } else {
          merged[k] = v;
        }
      }
      row.metadata[0] = std::move(merged);
    }
    if (!sample) {
      // Metadata only: set-payload merges top-level keys, so this replaces "metadata" (and its
      // filter aids) whole.
      json payload = {{"metadata", row.metadata[0]}, {"_keys", json::array()}, {"_num", json::object()}};
      payload.update(filter_aids(row.metadata[0]));
      const json body = {{"payload", payload}, {"points", json::array({pid})}};
      m_client.call({"POST", collection_path(dataset) + "/points/payload" + std::string(k_wait), body.dump()});
      invalidate(dataset);
      return;
    }
    Shape want{1};
    want.insert(want.end(), entry.spec.row_shape.begin(), entry.spec.row_shape.end());
    if (sample->dtype() != entry.spec.dtype || (sample->shape() != entry.spec.row_shape && sample->shape() != want)) {
      throw UsageError(fmt::format("dataset \"{}\": row \"{}\": sample must be {} of shape {}, got {} of shape {}",
                                   dataset, id, dtype_name(entry.spec.dtype), shape_to_string(entry.spec.row_shape),
                                   dtype_name(sample->dtype()), shape_to_string(sample->shape())));
    }
    row.data = Array(sample->dtype(), want, std::vector<std::byte>(sample->bytes().begin(), sample->bytes().end()));
    check_batch(entry.spec, row);
    upsert_bodies(
        m_client, dataset,
        pack_points(encode_points(entry.spec, row, row.indices), 1, static_cast<size_t>(k_server_request_bytes)));
    invalidate(dataset);
  }

  int64_t delete_ids(const std::string& dataset, const std::vector<std::string>& ids) override {
    require(dataset);
    std::vector<json> pids;
    std::set<std::string> keys;
    for (const auto& id : ids) {
      json pid = point_id(id);
      if (keys.insert(point_key(pid)).second) {
        pids.push_back(std::move(pid));
      }
    }
    std::vector<json> existing;
    for (auto& rec : retrieve(m_client, dataset, pids, false, false)) {
      existing.push_back(std::move(rec.at("id")));
    }
    if (!existing.empty()) {
      delete_points(m_client, dataset, existing);
      invalidate(dataset);
    }
    return static_cast<int64_t>(existing.size());
  }

  int64_t delete_where(const std::string& dataset, const Filter& filter) override {
    const CatalogEntry entry = require(dataset);
    const TranslatedFilter tf = translate_filter(&filter, entry.filter_aids, &entry.spec);
    int64_t n = 0;
    bool done = false;
    if (tf.exact) {
      try {
        n = m_client.call(count_call(dataset, tf.filter)).at("count").get<int64_t>();
        if (n > 0) {
          const json body = {{"filter", tf.filter}};
          m_client.call({"POST", collection_path(dataset) + "/points/delete" + std::string(k_wait), body.dump()});
        }
        done = true;
      } catch (const UsageError& e) {
        if (!is_index_required(e)) {
          throw;
        }
      }
    }
    if (!done) {
      // Page by page: a page's matches are deleted before the next page is read (the scroll
      // offset is the id after the page, which the deletes do not touch).
      for_each_match_page(dataset, filter, tf, [&](const std::vector<json>& ids) {
        n += static_cast<int64_t>(ids.size());
        delete_points(m_client, dataset, ids);
      });
    }
    invalidate(dataset);
    return n;
  }

  int64_t count(const std::string& dataset, const Filter* filter) override {
    const CatalogEntry entry = require(dataset);
    if (filter == nullptr || filter->empty()) {
      return count_all(dataset);
    }
    const TranslatedFilter tf = translate_filter(filter, entry.filter_aids, &entry.spec);
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

  std::vector<QueryHit> query(const std::string& dataset, const std::vector<float>& vector,
                              const QueryOptions& options) override;

  // --- checkpoints and progress -----------------------------------------------------------
  std::string save_checkpoint(const Checkpoint& checkpoint) override { return checkpoints::save(m_client, checkpoint); }
  Checkpoint load_checkpoint(const std::string& path) override { return checkpoints::load(m_client, path); }
  std::vector<CheckpointInfo> list_checkpoints(const std::string& model) override {
    return checkpoints::list(m_client, model);
  }
  bool delete_checkpoint(const std::string& path) override { return checkpoints::remove(m_client, path); }
  void record_progress(const ProgressRecord& record) override { checkpoints::record_progress(m_client, record); }
  std::vector<ProgressRecord> list_progress(const std::string& run) override {
    return checkpoints::list_progress(m_client, run);
  }

  // next_index lives in a catalog point updated by read-modify-write: one writer per dataset
  // (requests within a write already run `parallel` at once).
  int max_ingest_writers() const override { return 1; }

  // --- statistics -----------------------------------------------------------------------
  Stats stats() override {
    Stats s;
    s.backend = "qdrant";
    s.location = m_client.location();
    s.datasets = list_datasets();
    for (auto& d : s.datasets) {
      // Collection info: status, segments and config; points_count is approximate (nullable),
      // so the exact rows come from count above.
      auto info = m_client.call_or_missing({"GET", collection_path(d.spec.name), ""});
      if (!info) {
        d.extra["status"] = "missing";
        continue;
      }
      d.extra["status"] = info->value("status", json());
      d.extra["optimizer_status"] = info->value("optimizer_status", json());
      d.extra["points_count"] = info->value("points_count", json());
      d.extra["indexed_vectors_count"] = info->value("indexed_vectors_count", json());
      d.extra["segments_count"] = info->value("segments_count", json());
      const json config = info->value("config", json::object());
      d.extra["vectors"] = config.value("params", json::object()).value("vectors", json());
      json indexed = json::array();
      const json schema = info->value("payload_schema", json::object());  // named: items() of a temporary dangles
      for (const auto& [key, field] : schema.items()) {
        indexed.push_back(key);
      }
      d.extra["payload_indexes"] = indexed;
    }
    for (const auto& c : list_checkpoints("")) {
      ++s.checkpoints_per_model[c.model];
    }
    const auto http_stats = m_client.stats();
    s.extra = {{"server_version", m_client.version_text()},
               {"http_requests", http_stats.requests},
               {"http_retries", http_stats.retries},
               {"max_request_bytes", m_max_bytes}};
    return s;
  }

 private:
  // --- catalog --------------------------------------------------------------------------
  void ensure_catalog() {
    if (!m_catalog_ready) {
      create_collection(m_client, std::string(k_catalog), 1, "Dot");
      m_catalog_ready = true;
    }
  }

  static CatalogEntry parse_catalog(const json& record) {
    const json& p = record.at("payload");
    CatalogEntry e;
    const std::string name = p.value("name", std::string());
    e.spec = spec_from_json(name, p.value("spec", json::object()));
    e.next_index = p.value("next_index", int64_t{0});
    e.filter_aids = p.value("filter_aids", false);
    return e;
  }

  std::optional<CatalogEntry> load_catalog(const std::string& dataset) {
    validate_dataset_name(dataset);
    std::vector<json> found;
    try {
      found = retrieve(m_client, std::string(k_catalog), {catalog_point_id(dataset)}, true, false);
    } catch (const NotFoundError&) {
      return std::nullopt;  // no catalog collection yet: no datasets
    }
    if (found.empty()) {
      return std::nullopt;
    }
    return parse_catalog(found[0]);
  }

  std::vector<json> scroll_catalog() {
    try {
      return scroll_all(m_client, std::string(k_catalog),
                        json{{"limit", 1000}, {"with_payload", true}, {"with_vector", false}});
    } catch (const NotFoundError&) {
      return {};
    }
  }

  void save_catalog(const CatalogEntry& e) {
    ensure_catalog();
    const json point = {{"id", catalog_point_id(e.spec.name)},
                        {"vector", {1.0}},
                        {"payload",
                         {{"name", e.spec.name},
                          {"spec", spec_to_json(e.spec)},
                          {"next_index", e.next_index},
                          {"filter_aids", e.filter_aids}}}};
    upsert_bodies(m_client, std::string(k_catalog), {json{{"points", json::array({point})}}.dump()});
  }

  CatalogEntry require(const std::string& dataset) {
    auto entry = load_catalog(dataset);
    if (!entry) {
      throw NotFoundError(fmt::format("{}: dataset \"{}\" does not exist", m_client.location(), dataset));
    }
    return *entry;
  }

  // Creates the collection (or checks the one found) and its payload indexes, once per process
  // and dataset: an ingest calls create_dataset at every resume point. A collection that exists
  // costs one GET (its info lists the payload indexes already there), a new one the create and
  // the index PUTs.
  void ensure_collection(const DatasetSpec& spec) {
    {
      std::lock_guard lock(m_mutex);
      if (m_ensured.count(spec.name) != 0) {
        return;
      }
    }
    const std::string distance = distance_name(spec.metric);
    const Call get{"GET", collection_path(spec.name), ""};
    auto info = m_client.call_or_missing(get);
    if (!info && !create_collection(m_client, spec.name, spec.dimension(), distance)) {
      info = m_client.call(get);  // created meanwhile by another process: check it as found
    }
    json schema = json::object();
    if (info) {
      const json vectors =
          info->value("config", json::object()).value("params", json::object()).value("vectors", json());
      if (!vectors.is_object() || vectors.value("size", int64_t{0}) != spec.dimension() ||
          vectors.value("distance", std::string()) != distance) {
        throw ConflictError(
            fmt::format("{}: collection \"{}\" exists with vectors {}; dataset needs size {} distance {}",
                        m_client.location(), spec.name, vectors.dump(), spec.dimension(), distance));
      }
      schema = info->value("payload_schema", json::object());
    }
    std::vector<std::pair<std::string, std::string>> indexes{
        {"_id", "keyword"}, {"_idx", "integer"}, {"_keys", "keyword"}};
    if (spec.label_dtype && spec.label_shape.empty()) {
      indexes.emplace_back("label", label_index_schema(*spec.label_dtype));
    }
    for (const auto& [field, type] : indexes) {
      if (!schema.is_object() || !schema.contains(field)) {
        create_payload_index(m_client, spec.name, field, type);
      }
    }
    std::lock_guard lock(m_mutex);
    m_ensured.insert(spec.name);
  }

  // --- reads ------------------------------------------------------------------------------
  Call count_call(const std::string& dataset, const json& filter) const {
    json body = {{"exact", true}};
    if (filter.is_object() && !filter.empty()) {
      body["filter"] = filter;
    }
    return {"POST", collection_path(dataset) + "/points/count", body.dump()};
  }

  int64_t count_all(const std::string& dataset) {
    return m_client.call(count_call(dataset, json())).at("count").get<int64_t>();
  }

  json scroll_body(const DatasetSpec& spec, const json& filter, int64_t limit) const {
    return json{{"filter", filter}, {"limit", limit}, {"with_payload", true}, {"with_vector", !needs_data_blob(spec)}};
  }

  // Rows with indices lo..hi-1, all live (the dataset has no gaps), in index order.
  RowBatch rows_in_range(const CatalogEntry& entry, int64_t lo, int64_t hi) {
    std::vector<Call> calls;
    for (int64_t a = lo; a < hi; a += k_rows_per_read) {
      const int64_t b = std::min(hi, a + k_rows_per_read);
      calls.push_back({"POST", collection_path(entry.spec.name) + "/points/scroll",
                       scroll_body(entry.spec, idx_range(a, b), b - a).dump()});
    }
    std::vector<json> records;
    for (auto& result : m_client.call_all(calls)) {
      for (auto& p : result.at("points")) {
        records.push_back(std::move(p));
      }
    }
    std::sort(records.begin(), records.end(), [](const json& a, const json& b) { return idx_of(a) < idx_of(b); });
    return decode_records(entry.spec, pointers(records), true);
  }

  // Rows with the given indices, in the order given (repeats allowed); missing ones left out.
  RowBatch rows_at(const CatalogEntry& entry, const std::vector<int64_t>& indices) {
    std::vector<int64_t> unique(indices);
    std::sort(unique.begin(), unique.end());
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    std::vector<Call> calls;
    for (size_t i = 0; i < unique.size(); i += static_cast<size_t>(k_rows_per_read)) {
      const auto end = std::min(unique.size(), i + static_cast<size_t>(k_rows_per_read));
      const json any(std::vector<int64_t>(unique.begin() + static_cast<ptrdiff_t>(i),
                                          unique.begin() + static_cast<ptrdiff_t>(end)));
      const json filter = {{"must", json::array({json{{"key", "_idx"}, {"match", {{"any", any}}}}})}};
      calls.push_back({"POST", collection_path(entry.spec.name) + "/points/scroll",
                       scroll_body(entry.spec, filter, static_cast<int64_t>(end - i)).dump()});
    }
    std::vector<json> records;
    for (auto& result : m_client.call_all(calls)) {
      for (auto& p : result.at("points")) {
        records.push_back(std::move(p));
      }
    }
    std::map<int64_t, const json*> by_index;
    for (const auto& r : records) {
      by_index[idx_of(r)] = &r;
    }
    std::vector<const json*> ordered;
    for (int64_t idx : indices) {
      if (auto it = by_index.find(idx); it != by_index.end()) {
        ordered.push_back(it->second);
      }
    }
    return decode_records(entry.spec, ordered, true);
  }

  // The sorted live indices of a dataset with gaps, cached while (next_index, rows) hold.
  const std::vector<int64_t>& live_indices(const CatalogEntry& entry, int64_t live) {
    std::lock_guard lock(m_mutex);
    auto& cache = m_positions[entry.spec.name];
    if (cache.next_index == entry.next_index && cache.rows == live) {
      return cache.indices;
    }
    std::vector<int64_t> indices;
    for (const auto& rec :
         scroll_all(m_client, entry.spec.name,
                    json{{"limit", k_scroll_page}, {"with_payload", json::array({"_idx"})}, {"with_vector", false}})) {
      indices.push_back(idx_of(rec));
    }
    std::sort(indices.begin(), indices.end());
    if (static_cast<int64_t>(indices.size()) != live) {
      throw RetryableError(
          fmt::format("{}: dataset \"{}\" changed while reading; retry", m_client.location(), entry.spec.name));
    }
    cache = {entry.next_index, live, std::move(indices)};
    return cache.indices;
  }

  // Point JSON of a batch, encoded by up to `parallel` threads: float formatting is the main
  // cost of an ingest (bench/qdrant_bench.sh), and the requests are sent `parallel` at a time.
  std::vector<std::string> encode_parallel(const DatasetSpec& spec, const RowBatch& batch,
                                           const std::vector<int64_t>& indices) const {
    std::vector<std::string> out(batch.size());
    const size_t workers = std::clamp<size_t>(batch.size() / 256, 1, static_cast<size_t>(m_parallel));
    if (workers == 1) {
      encode_points_range(spec, batch, indices, 0, batch.size(), out);
      return out;
    }
    std::vector<std::exception_ptr> errors(workers);
    std::vector<std::thread> threads;
    const size_t per = (batch.size() + workers - 1) / workers;
    for (size_t w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        try {
          encode_points_range(spec, batch, indices, w * per, std::min(batch.size(), (w + 1) * per), out);
        } catch (...) {
          errors[w] = std::current_exception();
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    for (const auto& e : errors) {
      if (e) {
        std::rethrow_exception(e);
      }
    }
    return out;
  }

  void invalidate(const std::string& dataset) {
    std::lock_guard lock(m_mutex);
    m_positions.erase(dataset);
  }

  void forget_collection(const std::string& dataset) {
    std::lock_guard lock(m_mutex);
    m_ensured.erase(dataset);
  }

  // The client-side fallback, in bounded pages: scrolls k_fallback_page points at a time (with
  // the translated superset filter when the server accepts it), checks each row's metadata
  // with Filter::matches, and hands each page's matching point ids to fn (pages with none are
  // skipped). Memory and every request stay bounded however many rows match.
  void for_each_match_page(const std::string& dataset, const Filter& filter, const TranslatedFilter& tf,
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

  struct PositionCache {
    int64_t next_index = -1;
    int64_t rows = -1;
    std::vector<int64_t> indices;
  };

  RestClient m_client;
  int64_t m_max_bytes;
  int64_t m_parallel;
  double m_encode_s = 0;  // write_rows: building the JSON bodies
  double m_send_s = 0;    // write_rows: sending them (network + server)
  int64_t m_rows_sent = 0;
  int64_t m_bytes_sent = 0;
  bool m_catalog_ready = false;
  std::mutex m_mutex;
  std::map<std::string, PositionCache> m_positions;
  std::set<std::string> m_ensured;  // collections this process has created or checked
};

std::vector<QueryHit> QdrantBackend::query(const std::string& dataset, const std::vector<float>& vector,
                                           const QueryOptions& options) {
  const CatalogEntry entry = require(dataset);
  if (static_cast<int64_t>(vector.size()) != entry.spec.dimension()) {
    throw UsageError(fmt::format("dataset \"{}\": query vector has {} values, rows have {}", dataset, vector.size(),
                                 entry.spec.dimension()));
  }
  for (float v : vector) {
    if (!std::isfinite(v)) {
      throw UsageError(fmt::format("dataset \"{}\": query vector holds NaN or Inf", dataset));
    }
  }
  if (options.top_k <= 0) {
    return {};
  }
  const bool blob = needs_data_blob(entry.spec);
  const bool want_values = options.include_values;
  // Payload always carries _id/_idx (and label); the exact sample only when values are asked.
  const json with_payload = want_values && blob ? json(true) : json{{"exclude", json::array({"_data"})}};
  const bool modern = m_client.version() >= std::pair(1, 10);

  auto run = [&](const json& filter) {
    std::string body = modern ? "{\"query\":" : "{\"vector\":";
    util::append_float_array(body, vector.data(), vector.size());
    json rest = {{"limit", options.top_k}, {"with_payload", with_payload}, {"with_vector", want_values && !blob}};
    // SearchParams: `exact` skips the HNSW index, `hnsw_ef` widens its beam (query --exact/--ef).
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
    const std::string tail = rest.dump();
    body += ",";
    body.append(tail, 1, std::string::npos);  // splice: rest's members after the vector
    const json result =
        m_client.call({"POST", collection_path(dataset) + (modern ? "/points/query" : "/points/search"), body});
    return modern ? result.at("points") : result;
  };

  json points;
  const bool filtered = options.filter != nullptr && !options.filter->empty();
  const TranslatedFilter tf = translate_filter(options.filter, entry.filter_aids, &entry.spec);
  bool done = false;
  if (!filtered || tf.exact) {
    try {
      points = run(tf.filter);
      done = true;
    } catch (const UsageError& e) {
      if (!filtered || !is_index_required(e)) {
        throw;
      }
    }
  }
  if (!done) {
    // Each page's matches are queried by has_id (a bounded list) and the best top_k kept.
    const bool lower_is_better = entry.spec.metric == Metric::euclidean;
    points = json::array();
    for_each_match_page(dataset, *options.filter, tf, [&](const std::vector<json>& ids) {
      for (auto& p : run(json{{"must", json::array({json{{"has_id", ids}}})}})) {
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
  }

  std::vector<const json*> records;
  for (const auto& p : points) {
    records.push_back(&p);
  }
  const RowBatch rows = decode_records(entry.spec, records, want_values);
  const Array f32 = want_values ? rows.data.to_float32() : Array();
  const auto dim = static_cast<size_t>(entry.spec.dimension());
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
  sort_hits(entry.spec.metric, hits);
  return hits;
}

}  // namespace

std::unique_ptr<Backend> create(const Profile& profile) { return std::make_unique<QdrantBackend>(profile); }

}  // namespace vstash::backends::qdrant
