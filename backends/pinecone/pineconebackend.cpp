// SPDX-License-Identifier: MIT
// The Pinecone backend: one serverless index per profile, one namespace per dataset.
//
// Mapping (README "Pinecone"):
// - dataset D -> namespace namespace_prefix + D ("" and "__default__" are the same namespace);
//   its spec and counters live as a record in the reserved namespace __vstash_catalog__.
// - rows -> records (see pineconerecords.cpp); rows are addressed by metadata "_idx", read
//   back with filtered queries ({"_idx": {"$in": [...]}}) sized to stay under the 4 MiB reply cap.
// - checkpoints -> namespace __vstash_checkpoints__: a manifest record "m:MODEL@EPOCH" and the
//   arrays as base64 rowcodec chunks of at most 29000 bytes ("c:MODEL@EPOCH:TOKEN:A:C"), so
//   every record stays under 40 KB of metadata. Chunks are written before the manifest, under
//   a fresh token, so a reader never sees half a checkpoint; latest = highest epoch listed.
// - progress -> namespace __vstash_progress__, one record per (run, rank).
// Scores: Pinecone's euclidean score is the squared L2 distance; it is converted to L2.
// Indexes: `index_name` names one index holding every dataset (a dataset whose dimension or
// metric differs is refused with ConflictError), or is a template ("vstash-{dimension}-{metric}")
// giving each (dimension, metric) its own index, created on demand. The catalog, checkpoints and
// progress live in the "home" index: the template filled with the profile's dimension/metric.
// Consistency: Pinecone applies writes asynchronously. With profile key `wait` (default true)
// every write call returns only once its LSN is indexed (polling describe_index_stats), so a
// read that follows sees it. Other processes' concurrent writes are not coordinated
// (next_index is read-modify-write).
#include <fmt/format.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "backends/common/rowcheck.hpp"
#include "backends/common/rowcodec.hpp"
#include "backends/common/scoring.hpp"
#include "backends/pinecone/pineconebackend.hpp"
#include "backends/pinecone/pineconeinternal.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "src/util/base64.hpp"

namespace vstash::backends::pinecone {

namespace {

constexpr int64_t k_window = k_max_top_k;
constexpr size_t k_chunk_raw_bytes = 29000;  // base64 38668 chars: under 40960 with the keys
constexpr auto k_wait_deadline = std::chrono::seconds(120);

std::string ids_query(const std::string& ns, const std::vector<std::string>& ids) {
  std::string q = "/vectors/fetch?namespace=" + http::url_escape(ns);
  for (const auto& id : ids) {
    q += "&ids=" + http::url_escape(id);
  }
  return q;
}

json idx_range(int64_t lo, int64_t hi) { return json{{"_idx", {{"$gte", lo}, {"$lt", hi}}}}; }

json both(const json& a, const json& b) {
  if (a.is_null()) {
    return b;
  }
  return json{{"$and", json::array({a, b})}};
}

class PineconeBackend final : public Backend, public CheckpointStore, public ProgressStore {
 public:
  CheckpointStore& checkpoints() override { return *this; }
  ProgressStore& progress() override { return *this; }
  explicit PineconeBackend(const Profile& profile)
      : m_profile(profile),
        m_index_template(profile.get_string("index_name", "")),
        m_conn(profile, home_index_name(profile)),
        m_prefix(profile.get_string("namespace_prefix", "")),
        m_wait(profile.get_bool("wait", true)),
        m_profile_dimension(profile.get_int("dimension", 0)),
        m_profile_metric(parse_metric(profile.get_string("metric", "cosine"))) {}

  std::string kind() const override { return "pinecone"; }

  void create_dataset(const DatasetSpec& spec) override {
    const std::string ns = namespace_of(spec.name);
    Connection& c = conn(spec);
    const IndexInfo& info = c.index(IndexRequest{spec.dimension(), spec.metric});
    if (info.dimension != spec.dimension() || info.metric != spec.metric) {
      throw ConflictError(
          fmt::format("{}: index has dimension {} and metric {}; dataset \"{}\" needs dimension {} "
                      "and metric {} (use another index, or an index_name template such as "
                      "\"vstash-{{dimension}}-{{metric}}\")",
                      c.location(), info.dimension, metric_name(info.metric), spec.name, spec.dimension(),
                      metric_name(spec.metric)));
    }
    if (auto existing = load_catalog(spec.name)) {
      if (!compatible(existing->spec, spec)) {
        throw ConflictError(fmt::format("{}: dataset \"{}\" exists as {}; requested {}", m_conn.location(), spec.name,
                                        describe_spec(existing->spec), describe_spec(spec)));
      }
      json merged = existing->spec.metadata.is_object() ? existing->spec.metadata : json::object();
      merged.update(spec.metadata.is_object() ? spec.metadata : json::object());
      if (merged != existing->spec.metadata) {
        existing->spec.metadata = merged;
        save_catalog(*existing);
        wait_visible();
      }
      return;
    }
    (void)ns;
    CatalogEntry entry;
    entry.spec = spec;
    entry.label_field = true;
    save_catalog(entry);
    wait_visible();
  }

  std::optional<DatasetInfo> dataset_info(const std::string& dataset) override {
    auto entry = load_catalog(dataset);
    if (!entry) {
      return std::nullopt;
    }
    DatasetInfo info;
    info.spec = entry->spec;
    info.next_index = entry->next_index;
    // One describe_index_stats, not a query per 10,000 rows: every command starts here.
    info.rows = namespace_rows(namespace_counts(conn(entry->spec)), namespace_of(dataset));
    info.extra = {{"namespace", namespace_of(dataset)}, {"index", conn(entry->spec).index_name()}};
    return info;
  }

  std::vector<DatasetInfo> list_datasets() override {
    std::vector<DatasetInfo> out;
    std::map<std::string, json> counts_by_index;
    for (const json& md : fetch_all(m_conn, catalog_ns(), "")) {
      CatalogEntry e = merge_local(parse_catalog(md.value("metadata", json::object())));
      DatasetInfo info;
      info.spec = e.spec;
      info.next_index = e.next_index;
      std::string ns = namespace_of(e.spec.name);
      Connection& c = conn(e.spec);
      if (!counts_by_index.count(c.index_name())) {
        counts_by_index[c.index_name()] = namespace_counts(c);
      }
      info.rows = namespace_rows(counts_by_index[c.index_name()], ns);
      info.extra = {{"namespace", ns}, {"index", c.index_name()}, {"rows_approximate", true}};
      out.push_back(std::move(info));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.spec.name < b.spec.name; });
    return out;
  }

  bool drop_dataset(const std::string& dataset) override {
    auto entry = load_catalog(dataset);
    if (!entry) {
      return false;
    }
    try {
      conn(entry->spec).post("/vectors/delete", json{{"deleteAll", true}, {"namespace", namespace_of(dataset)}}.dump());
    } catch (const NotFoundError&) {
      // Pinecone answers 404 for a namespace that never received a row.
    }
    m_conn.post("/vectors/delete", json{{"ids", {stored_id(dataset)}}, {"namespace", catalog_ns()}}.dump());
    {
      std::lock_guard lock(m_mutex);
      m_catalog.erase(dataset);
      m_positions.erase(dataset);
    }
    wait_visible();
    return true;
  }

  void write_rows(const std::string& dataset, const RowBatch& batch) override {
    CatalogEntry entry = require(dataset);
    check_batch(entry.spec, batch);
    if (batch.size() == 0) {
      return;
    }
    std::vector<int64_t> indices = batch.indices;
    if (indices.empty()) {
      // An id that exists keeps its index (an upsert replaces the row in place): look the ids up
      // first, unless the dataset has never held a row. Ingest passes indices and skips this.
      std::map<std::string, json> existing;
      if (entry.next_index > 0) {
        std::vector<std::string> stored;
        for (const auto& id : batch.ids) {
          stored.push_back(stored_id(id));
        }
        existing = fetch_records(conn(entry.spec), namespace_of(dataset), stored, entry.row_bytes);
      }
      int64_t next = entry.next_index;
      for (size_t i = 0; i < batch.size(); ++i) {
        auto it = existing.find(stored_id(batch.ids[i]));
        const json md = it == existing.end() ? json() : it->second.value("metadata", json::object());
        indices.push_back(md.contains("_idx") ? static_cast<int64_t>(md["_idx"].get<double>()) : next++);
      }
    }
    const EncodedRows rows = encode_rows(entry.spec, batch, indices);
    upsert_records(conn(entry.spec), namespace_of(dataset), rows.records);
    entry.next_index = std::max(entry.next_index, *std::max_element(indices.begin(), indices.end()) + 1);
    entry.row_bytes = std::max(entry.row_bytes, static_cast<int64_t>(rows.max_bytes));
    save_catalog(entry);
    invalidate(dataset);
    wait_visible();
  }

  RowBatch read_rows(const std::string& dataset, int64_t offset, int64_t count) override {
    CatalogEntry entry = require(dataset);
    std::vector<int64_t> positions;
    int64_t live = 0;
    for (int64_t c : position_cache(entry).counts) {
      live += c;
    }
    for (int64_t p = std::max<int64_t>(offset, 0); p < std::min(live, offset + count); ++p) {
      positions.push_back(p);
    }
    return read_indices(entry, positions_to_indices(entry, positions));
  }

  RowBatch read_positions(const std::string& dataset, const std::vector<int64_t>& positions) override {
    CatalogEntry entry = require(dataset);
    return read_indices(entry, positions_to_indices(entry, positions));
  }

  RowBatch fetch(const std::string& dataset, const std::vector<std::string>& ids) override {
    CatalogEntry entry = require(dataset);
    std::vector<std::string> stored;
    for (const auto& id : ids) {
      stored.push_back(stored_id(id));
    }
    const auto records = fetch_records(conn(entry.spec), namespace_of(dataset), stored, entry.row_bytes);
    std::vector<DecodedRow> rows;
    for (const auto& s : stored) {
      if (auto it = records.find(s); it != records.end()) {
        rows.push_back(decode_row(entry.spec, it->second));
      }
    }
    return assemble_rows(entry.spec, rows);
  }

  void update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                  const std::optional<json>& metadata) override {
    CatalogEntry entry = require(dataset);
    const std::string sid = stored_id(id);
    const std::string ns = namespace_of(dataset);
    Connection& c = conn(entry.spec);
    const auto records = fetch_records(c, ns, {sid}, entry.row_bytes);
    if (records.empty()) {
      throw NotFoundError(fmt::format("{}: dataset \"{}\": id \"{}\" does not exist", c.location(), dataset, id));
    }
    const json& current = records.begin()->second;
    DecodedRow row = decode_row(entry.spec, current);
    Shape batch_shape{1};  // a one-row batch is accepted too, as on every store
    batch_shape.insert(batch_shape.end(), entry.spec.row_shape.begin(), entry.spec.row_shape.end());
    if (sample) {
      if (sample->dtype() != entry.spec.dtype ||
          (sample->shape() != entry.spec.row_shape && sample->shape() != batch_shape)) {
        throw UsageError(fmt::format("dataset \"{}\": row \"{}\": sample must be {} of shape {}, got {} of shape {}",
                                     dataset, id, dtype_name(entry.spec.dtype), shape_to_string(entry.spec.row_shape),
                                     dtype_name(sample->dtype()), shape_to_string(sample->shape())));
      }
      check_finite(*sample, {id}, dataset);
    }
    if (metadata && !metadata->is_null() && !metadata->is_object()) {
      throw UsageError(fmt::format("dataset \"{}\": row \"{}\": metadata must be a JSON object", dataset, id));
    }
    json merged = row.metadata.is_object() ? row.metadata : json::object();
    bool deletes_key = false;
    bool encoded_value = false;  // a value kept in "_json": the record is rewritten whole
    json patch = json::object();
    const json changes = metadata && metadata->is_object() ? *metadata : json::object();
    for (const auto& [k, v] : changes.items()) {  // named: items() of a temporary dangles
      if (v.is_null()) {
        merged.erase(k);
        deletes_key = true;
      } else {
        merged[k] = v;
        patch[k] = v;
        encoded_value = encoded_value || !is_native_value(v);
      }
    }
    check_user_metadata(merged, dataset, id);
    const Array new_sample = sample ? *sample : row.sample;
    RowBatch one;
    one.ids = {id};
    one.indices = {row.index};
    Shape shape{1};
    shape.insert(shape.end(), entry.spec.row_shape.begin(), entry.spec.row_shape.end());
    one.data =
        Array(entry.spec.dtype, shape, std::vector<std::byte>(new_sample.bytes().begin(), new_sample.bytes().end()));
    if (row.label) {
      Shape ls{1};
      ls.insert(ls.end(), row.label->shape().begin(), row.label->shape().end());
      one.labels =
          Array(row.label->dtype(), ls, std::vector<std::byte>(row.label->bytes().begin(), row.label->bytes().end()));
    }
    one.metadata = {merged.empty() ? json() : merged};
    const EncodedRows enc = encode_rows(entry.spec, one, one.indices);  // also checks the 40 KB limit
    const json& meta_now = current.value("metadata", json::object());
    const bool was_zero = meta_now.value("_zero", false);
    const bool is_zero = enc.records[0].find("\"_zero\":true") != std::string::npos;
    if (deletes_key || encoded_value || meta_now.contains("_json") || was_zero || is_zero ||
        (sample && keeps_exact_blob(entry.spec))) {
      // setMetadata can only add or overwrite native keys: rewrite the whole record instead.
      upsert_records(c, ns, enc.records);
    } else if (sample || !patch.empty()) {
      json body = {{"id", sid}, {"namespace", ns}};
      if (sample) {
        body["values"] = one.data.row_as_float32(0);  // the whole row (new_sample is one row, not a batch)
      }
      if (!patch.empty()) {
        body["setMetadata"] = patch;
      }
      c.post("/vectors/update", body.dump());
    }
    wait_visible();
  }

  int64_t delete_ids(const std::string& dataset, const std::vector<std::string>& ids) override {
    CatalogEntry entry = require(dataset);
    const std::string ns = namespace_of(dataset);
    std::vector<std::string> stored;
    for (const auto& id : ids) {
      stored.push_back(stored_id(id));
    }
    Connection& c = conn(entry.spec);
    const auto existing = fetch_records(c, ns, stored, entry.row_bytes);
    std::vector<std::string> gone;
    for (const auto& [sid, record] : existing) {
      gone.push_back(sid);
    }
    std::vector<http::Request> requests;
    for (size_t i = 0; i < gone.size(); i += k_max_ids_per_request) {
      const auto end = std::min(gone.size(), i + k_max_ids_per_request);
      json body = {{"ids", std::vector<std::string>(gone.begin() + static_cast<ptrdiff_t>(i),
                                                    gone.begin() + static_cast<ptrdiff_t>(end))},
                   {"namespace", ns}};
      requests.push_back(c.make_post("/vectors/delete", body.dump()));
    }
    c.send_all(std::move(requests));
    invalidate(dataset);
    wait_visible();
    return static_cast<int64_t>(gone.size());
  }

  int64_t delete_where(const std::string& dataset, const Filter& filter) override {
    CatalogEntry entry = require(dataset);
    const json f = translate_filter(filter, &entry);
    int64_t n = f.is_null() ? count(dataset, nullptr) : 0;
    for (int64_t c : f.is_null() ? std::vector<int64_t>() : window_counts(entry, &f)) {
      n += c;
    }
    if (n > 0) {
      json body = {{"namespace", namespace_of(dataset)}};
      if (f.is_null()) {
        body["deleteAll"] = true;
      } else {
        body["filter"] = f;
      }
      conn(entry.spec).post("/vectors/delete", body.dump());
      invalidate(dataset);
      wait_visible();
    }
    return n;
  }

  int64_t count(const std::string& dataset, const Filter* filter) override {
    CatalogEntry entry = require(dataset);
    const json f = filter ? translate_filter(*filter, &entry) : json();
    if (f.is_null()) {
      return namespace_rows(namespace_counts(conn(entry.spec)), namespace_of(dataset));
    }
    int64_t n = 0;
    for (int64_t c : window_counts(entry, &f)) {
      n += c;
    }
    return n;
  }

  std::vector<QueryHit> query(const std::string& dataset, const std::vector<float>& vector,
                              const QueryOptions& options) override;

  std::string save_checkpoint(const Checkpoint& checkpoint) override {
    auto o = ops(checkpoint_ns());
    return checkpoints::save(o, checkpoint);
  }
  Checkpoint load_checkpoint(const std::string& path) override {
    auto o = ops(checkpoint_ns());
    return checkpoints::load(o, path);
  }
  std::vector<CheckpointInfo> list_checkpoints(const std::string& model) override {
    auto o = ops(checkpoint_ns());
    return checkpoints::list(o, model);
  }
  bool delete_checkpoint(const std::string& path) override {
    auto o = ops(checkpoint_ns());
    return checkpoints::remove(o, path);
  }
  void record_progress(const ProgressRecord& record) override {
    auto o = ops(progress_ns());
    checkpoints::record_progress(o, record);
  }
  std::vector<ProgressRecord> list_progress(const std::string& run) override {
    auto o = ops(progress_ns());
    return checkpoints::list_progress(o, run);
  }

  // next_index lives in a catalog record updated by read-modify-write: one writer per dataset
  // (requests within a write already run `parallel` at once).
  int max_ingest_writers() const override { return 1; }

  Stats stats() override {
    Stats s;
    s.backend = "pinecone";
    const IndexInfo& info = m_conn.index();
    s.location = info.host;
    s.datasets = list_datasets();
    for (const auto& c : list_checkpoints("")) {
      ++s.checkpoints_per_model[c.model];
    }
    const auto http_stats = m_conn.stats();
    s.extra = {{"index", info.name},
               {"dimension", info.dimension},
               {"metric", wire_metric(info.metric)},
               {"api_version", k_api_version},
               {"namespaces", namespace_counts(m_conn)},
               {"http_requests", http_stats.requests},
               {"http_retries", http_stats.retries}};
    return s;
  }

 private:
  struct PositionCache {
    int64_t next_index = -1;
    std::vector<int64_t> counts;                      // live rows per _idx window
    std::map<int64_t, std::vector<int64_t>> indices;  // sorted live _idx of partial windows
  };

  std::string namespace_of(const std::string& dataset) const {
    if (dataset.rfind("__vstash_", 0) == 0) {
      throw UsageError(fmt::format("dataset \"{}\": names starting with \"__vstash_\" are reserved", dataset));
    }
    std::string ns = m_prefix + dataset;
    return ns == "__default__" ? std::string() : ns;
  }
  std::string catalog_ns() const { return m_prefix + std::string(k_catalog_ns); }
  std::string checkpoint_ns() const { return m_prefix + std::string(k_checkpoint_ns); }
  std::string progress_ns() const { return m_prefix + std::string(k_progress_ns); }

  int64_t dimension() { return m_conn.index(IndexRequest{m_profile_dimension, m_profile_metric}).dimension; }

  static std::string home_index_name(const Profile& profile) {
    const std::string name = profile.get_string("index_name", "");
    if (!is_index_template(name)) {
      return name;
    }
    const int64_t dim = profile.get_int("dimension", 0);
    if (dim <= 0) {
      throw UsageError(
          fmt::format("profile \"{}\" ({}): index_name \"{}\" is a template, so key \"dimension\" "
                      "must name the home index's dimension",
                      profile.name(), profile.source(), name));
    }
    return expand_index_name(name, dim, parse_metric(profile.get_string("metric", "cosine")));
  }

  // The connection to the index that holds a dataset of this spec (the home index unless
  // index_name is a template).
  Connection& conn(const DatasetSpec& spec) {
    if (!is_index_template(m_index_template)) {
      return m_conn;
    }
    const std::string name = expand_index_name(m_index_template, spec.dimension(), spec.metric);
    if (name == m_conn.index_name()) {
      return m_conn;
    }
    std::lock_guard lock(m_conns_mutex);
    auto& slot = m_conns[name];
    if (!slot) {
      slot = std::make_unique<Connection>(m_profile, name);
    }
    return *slot;
  }

  CatalogEntry merge_local(CatalogEntry e) {
    std::lock_guard lock(m_mutex);
    if (auto it = m_catalog.find(e.spec.name); it != m_catalog.end()) {
      e.next_index = std::max(e.next_index, it->second.next_index);
      e.row_bytes = std::max(e.row_bytes, it->second.row_bytes);
    }
    return e;
  }

  std::optional<CatalogEntry> load_catalog(const std::string& dataset) {
    namespace_of(dataset);
    std::map<std::string, json> records;
    try {
      m_conn.index();
    } catch (const NotFoundError&) {
      return std::nullopt;  // no home index yet: no dataset either (it is created on first write)
    }
    records = fetch_records(m_conn, catalog_ns(), {stored_id(dataset)}, 0);
    if (records.empty()) {
      std::lock_guard lock(m_mutex);
      auto it = m_catalog.find(dataset);
      return it == m_catalog.end() ? std::nullopt : std::optional(it->second);
    }
    return merge_local(parse_catalog(records.begin()->second.value("metadata", json::object())));
  }

  CatalogEntry require(const std::string& dataset) {
    auto entry = load_catalog(dataset);
    if (!entry) {
      throw NotFoundError(fmt::format("{}: dataset \"{}\" does not exist", m_conn.location(), dataset));
    }
    return *entry;
  }

  void save_catalog(const CatalogEntry& entry) {
    upsert_records(m_conn, catalog_ns(), {catalog_record(entry, dimension())});
    std::lock_guard lock(m_mutex);
    m_catalog[entry.spec.name] = entry;
  }

  void invalidate(const std::string& dataset) {
    std::lock_guard lock(m_mutex);
    m_positions.erase(dataset);
  }

  // Upserts serialized records, batched by count and by exact bytes, requests in parallel.
  void upsert_records(Connection& c, const std::string& ns, const std::vector<std::string>& records) {
    const std::string head = "{\"namespace\":" + json(ns).dump() + ",\"vectors\":[";
    std::vector<size_t> sizes;
    for (const auto& r : records) {
      sizes.push_back(r.size());
    }
    const auto plan = http::plan_batches(sizes, k_max_upsert_vectors, k_max_request_bytes, head.size() + 2, 1);
    std::vector<http::Request> requests;
    for (const auto& [b, e] : plan) {
      std::string body = head;
      for (size_t i = b; i < e; ++i) {
        if (i > b) {
          body += ',';
        }
        body += records[i];
      }
      body += "]}";
      http::Request request = c.make_post("/vectors/upsert", std::move(body));
      // A 200 that does not count every record sent is not an upsert of them all.
      request.check = [sent = e - b, check = std::move(request.check)](http::Response& response) {
        check(response);
        const auto got = response.parsed["upsertedCount"].get<uint64_t>();
        if (got != sent) {
          throw http::BadReply(fmt::format("upsertedCount {} for {} records sent", got, sent));
        }
      };
      requests.push_back(std::move(request));
    }
    c.send_all(std::move(requests));
  }

  // Fetches records by stored id: requests cut by URL length, id count and reply size.
  std::map<std::string, json> fetch_records(Connection& c, const std::string& ns, const std::vector<std::string>& ids,
                                            int64_t row_bytes) {
    const size_t per_reply = std::clamp<size_t>(
        k_response_budget / static_cast<size_t>(std::max<int64_t>(row_bytes, 1)), 1, k_max_ids_per_request);
    std::vector<http::Request> requests;
    std::vector<std::string> chunk;
    size_t url = 0;
    auto flush = [&] {
      if (!chunk.empty()) {
        requests.push_back(c.make_get(ids_query(ns, chunk)));
        chunk.clear();
        url = 0;
      }
    };
    for (const auto& id : ids) {
      const size_t add = http::url_escape(id).size() + 5;
      if (!chunk.empty() && (url + add > k_max_url_bytes || chunk.size() >= per_reply)) {
        flush();
      }
      chunk.push_back(id);
      url += add;
    }
    flush();
    std::map<std::string, json> out;
    for (const auto& resp : c.send_all(std::move(requests))) {
      const json& j = resp.parsed;
      const json vectors = j.value("vectors", json::object());
      for (const auto& [id, rec] : vectors.items()) {  // named: items() of a temporary dangles
        out[id] = rec;
      }
    }
    return out;
  }

  // Every record of a namespace whose id starts with prefix (list + fetch).
  std::vector<json> fetch_all(Connection& c, const std::string& ns, const std::string& prefix, int64_t row_bytes = 0) {
    std::vector<std::string> ids;
    std::string token;
    do {
      std::string q = "/vectors/list?namespace=" + http::url_escape(ns) + "&limit=100";
      if (!prefix.empty()) {
        q += "&prefix=" + http::url_escape(prefix);
      }
      if (!token.empty()) {
        q += "&paginationToken=" + http::url_escape(token);
      }
      const json j = c.get(q).parsed;
      for (const auto& v : j.value("vectors", json::array())) {
        ids.push_back(v.value("id", std::string()));
      }
      token = j.value("pagination", json::object()).value("next", std::string());
    } while (!token.empty());
    std::vector<json> out;
    for (auto& [id, rec] : fetch_records(c, ns, ids, row_bytes)) {
      out.push_back(std::move(rec));
    }
    return out;
  }

  // A query that selects by filter only: the vector is a fixed placeholder of the index's dimension.
  json query_body(const CatalogEntry& entry, int64_t top_k, const json& filter, bool values, bool metadata) {
    json body = {{"namespace", namespace_of(entry.spec.name)},
                 {"topK", top_k},
                 {"includeValues", values},
                 {"includeMetadata", metadata}};
    std::vector<float> dummy(static_cast<size_t>(std::max<int64_t>(entry.spec.dimension(), 1)), 0.0F);
    dummy[0] = 1.0F;
    body["vector"] = dummy;
    if (!filter.is_null()) {
      body["filter"] = filter;
    }
    return body;
  }

  // Live rows per window of 10000 indices, each counted with an ids-only filtered query.
  std::vector<int64_t> window_counts(const CatalogEntry& entry, const json* filter) {
    Connection& c = conn(entry.spec);
    std::vector<http::Request> requests;
    for (int64_t lo = 0; lo < entry.next_index; lo += k_window) {
      const int64_t hi = std::min(entry.next_index, lo + k_window);
      json f = both(filter ? *filter : json(), idx_range(lo, hi));
      requests.push_back(c.make_post("/query", query_body(entry, hi - lo, f, false, false).dump()));
    }
    std::vector<int64_t> counts;
    for (const auto& resp : c.send_all(std::move(requests))) {
      counts.push_back(static_cast<int64_t>(resp.parsed["matches"].size()));
    }
    return counts;
  }

  PositionCache& position_cache(const CatalogEntry& entry) {
    {
      std::lock_guard lock(m_mutex);
      auto it = m_positions.find(entry.spec.name);
      if (it != m_positions.end() && it->second.next_index == entry.next_index) {
        return it->second;
      }
    }
    PositionCache pc;
    pc.next_index = entry.next_index;
    pc.counts = window_counts(entry, nullptr);
    std::lock_guard lock(m_mutex);
    return m_positions[entry.spec.name] = std::move(pc);
  }

  // Sorted live indices of one window that has gaps, read in reply-sized sub-ranges.
  const std::vector<int64_t>& window_indices(const CatalogEntry& entry, PositionCache& pc, int64_t w) {
    if (auto it = pc.indices.find(w); it != pc.indices.end()) {
      return it->second;
    }
    Connection& c = conn(entry.spec);
    const int64_t lo = w * k_window;
    const int64_t hi = std::min(entry.next_index, lo + k_window);
    const int64_t step = std::clamp<int64_t>(
        static_cast<int64_t>(k_response_budget) / std::max<int64_t>(entry.row_bytes, 1), 1, k_window);
    std::vector<http::Request> requests;
    for (int64_t a = lo; a < hi; a += step) {
      const int64_t b = std::min(hi, a + step);
      requests.push_back(c.make_post("/query", query_body(entry, b - a, idx_range(a, b), false, true).dump()));
    }
    std::vector<int64_t> found;
    for (const auto& resp : c.send_all(std::move(requests))) {
      for (const auto& m : resp.parsed["matches"]) {
        found.push_back(static_cast<int64_t>(m.value("metadata", json::object()).value("_idx", -1.0)));
      }
    }
    std::sort(found.begin(), found.end());
    return pc.indices[w] = std::move(found);
  }

  std::vector<int64_t> positions_to_indices(const CatalogEntry& entry, const std::vector<int64_t>& positions) {
    PositionCache& pc = position_cache(entry);
    std::vector<int64_t> starts{0};
    for (int64_t c : pc.counts) {
      starts.push_back(starts.back() + c);
    }
    std::vector<int64_t> out;
    for (int64_t p : positions) {
      if (p < 0 || p >= starts.back()) {
        throw UsageError(
            fmt::format("dataset \"{}\": position {} is out of range ({} rows)", entry.spec.name, p, starts.back()));
      }
      const auto w = static_cast<int64_t>(std::upper_bound(starts.begin(), starts.end(), p) - starts.begin()) - 1;
      const int64_t lo = w * k_window;
      const int64_t width = std::min(entry.next_index, lo + k_window) - lo;
      const int64_t r = p - starts[static_cast<size_t>(w)];
      if (pc.counts[static_cast<size_t>(w)] == width) {
        out.push_back(lo + r);
      } else {
        const auto& live = window_indices(entry, pc, w);
        if (r >= static_cast<int64_t>(live.size())) {
          throw RetryableError(fmt::format("{}: dataset \"{}\" changed while reading; retry",
                                           conn(entry.spec).location(), entry.spec.name));
        }
        out.push_back(live[static_cast<size_t>(r)]);
      }
    }
    return out;
  }

  // The rows with these _idx values, in the order given.
  RowBatch read_indices(const CatalogEntry& entry, const std::vector<int64_t>& indices) {
    Connection& c = conn(entry.spec);
    const bool values = !keeps_exact_blob(entry.spec);
    const size_t per = std::clamp<size_t>(
        k_response_budget / static_cast<size_t>(std::max<int64_t>(entry.row_bytes, 1)), 1, k_max_ids_per_request);
    std::vector<int64_t> unique(indices);
    std::sort(unique.begin(), unique.end());
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    std::vector<http::Request> requests;
    for (size_t i = 0; i < unique.size(); i += per) {
      const auto end = std::min(unique.size(), i + per);
      json f = {{"_idx",
                 {{"$in", std::vector<int64_t>(unique.begin() + static_cast<ptrdiff_t>(i),
                                               unique.begin() + static_cast<ptrdiff_t>(end))}}}};
      requests.push_back(
          c.make_post("/query", query_body(entry, static_cast<int64_t>(end - i), f, values, true).dump()));
    }
    std::map<int64_t, DecodedRow> by_index;
    for (const auto& resp : c.send_all(std::move(requests))) {
      for (const auto& m : resp.parsed["matches"]) {
        DecodedRow row = decode_row(entry.spec, m);
        by_index.insert_or_assign(row.index, std::move(row));
      }
    }
    std::vector<DecodedRow> rows;
    for (int64_t idx : indices) {
      if (auto it = by_index.find(idx); it != by_index.end()) {
        rows.push_back(it->second);
      }
    }
    return assemble_rows(entry.spec, rows);
  }

  json namespace_counts(Connection& c) {
    const auto resp = c.post("/describe_index_stats", "{}");
    return resp.parsed.value("namespaces", json::object());
  }

  // A namespace's vectorCount in describe_index_stats ("" is listed as "__default__" or "").
  static int64_t namespace_rows(const json& counts, const std::string& ns) {
    for (const std::string& key : {ns.empty() ? std::string("__default__") : ns, ns}) {
      if (counts.contains(key) && counts[key].is_object()) {
        const json n = counts[key].value("vectorCount", json(0));
        return n.is_number_integer() ? n.get<int64_t>() : 0;
      }
    }
    return 0;
  }

  // With profile `wait`, polls describe_index_stats of every index we wrote to until it reports
  // our last write's LSN as indexed (x-pinecone-request-lsn vs x-pinecone-max-indexed-lsn).
  void wait_visible() {
    if (!m_wait) {
      return;
    }
    std::vector<Connection*> all{&m_conn};
    {
      std::lock_guard lock(m_conns_mutex);
      for (auto& [name, c] : m_conns) {
        all.push_back(c.get());
      }
    }
    for (Connection* c : all) {
      wait_visible(*c);
    }
  }

  void wait_visible(Connection& c) {
    const int64_t want = c.last_write_lsn();
    {
      std::lock_guard lock(m_conns_mutex);
      if (want == 0 || m_confirmed_lsn[&c] >= want) {
        return;
      }
    }
    const auto deadline = std::chrono::steady_clock::now() + k_wait_deadline;
    auto pause = std::chrono::milliseconds(10);
    for (;;) {
      const auto resp = c.post("/describe_index_stats", "{}");
      auto it = resp.headers.find("x-pinecone-max-indexed-lsn");
      if (it == resp.headers.end() || std::atoll(it->second.c_str()) >= want) {
        // No LSN header: nothing to compare, the write is acknowledged.
        std::lock_guard lock(m_conns_mutex);
        m_confirmed_lsn[&c] = want;
        return;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw RetryableError(fmt::format("{}: writes not visible after {} s (eventual consistency)", c.location(),
                                         k_wait_deadline.count()));
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(1000));
    }
  }

  // The record operations the checkpoint and progress code (pineconecheckpoints.cpp) needs.
  RecordOps ops(const std::string& ns) {
    RecordOps o;
    o.ns = ns;
    o.location = m_conn.location();
    o.dimension = dimension();
    o.upsert = [this, ns](const std::vector<std::string>& records) { upsert_records(m_conn, ns, records); };
    o.fetch = [this, ns](const std::vector<std::string>& ids) { return fetch_records(m_conn, ns, ids, 42000); };
    o.fetch_prefix = [this, ns](const std::string& prefix) { return fetch_all(m_conn, ns, prefix, 42000); };
    o.remove = [this, ns](const std::vector<std::string>& ids) {
      std::vector<http::Request> requests;
      for (size_t i = 0; i < ids.size(); i += k_max_ids_per_request) {
        const auto end = std::min(ids.size(), i + k_max_ids_per_request);
        json body = {{"ids", std::vector<std::string>(ids.begin() + static_cast<ptrdiff_t>(i),
                                                      ids.begin() + static_cast<ptrdiff_t>(end))},
                     {"namespace", ns}};
        requests.push_back(m_conn.make_post("/vectors/delete", body.dump()));
      }
      m_conn.send_all(std::move(requests));
    };
    o.settle = [this] { wait_visible(); };
    return o;
  }

  Profile m_profile;
  std::string m_index_template;
  Connection m_conn;  // the home index: catalog, checkpoints, progress (and every dataset without a template)
  std::mutex m_conns_mutex;
  std::map<std::string, std::unique_ptr<Connection>> m_conns;  // other indexes of an index_name template
  std::map<const Connection*, int64_t> m_confirmed_lsn;        // highest LSN seen indexed, per index
  std::string m_prefix;
  bool m_wait = true;
  int64_t m_profile_dimension = 0;
  Metric m_profile_metric = Metric::cosine;
  std::mutex m_mutex;
  std::map<std::string, CatalogEntry> m_catalog;  // this process's writes: read-your-writes
  std::map<std::string, PositionCache> m_positions;
};

std::vector<QueryHit> PineconeBackend::query(const std::string& dataset, const std::vector<float>& vector,
                                             const QueryOptions& options) {
  // Pinecone's query API has no exact mode and no search-breadth setting.
  if (options.exact) {
    throw UsageError("--exact is not supported by pinecone");
  }
  if (options.ef) {
    throw UsageError("--ef is not supported by pinecone");
  }
  CatalogEntry entry = require(dataset);
  if (static_cast<int64_t>(vector.size()) != entry.spec.dimension()) {
    throw UsageError(fmt::format("dataset \"{}\": query vector has {} values, rows have {}", dataset, vector.size(),
                                 entry.spec.dimension()));
  }
  if (options.top_k > k_max_top_k) {
    throw UsageError(
        fmt::format("dataset \"{}\": top_k {} is over pinecone's limit of {}", dataset, options.top_k, k_max_top_k));
  }
  if (options.top_k <= 0) {
    return {};
  }
  for (float v : vector) {
    if (!std::isfinite(v)) {
      throw UsageError(fmt::format("dataset \"{}\": query vector holds NaN or Inf", dataset));
    }
  }
  const std::string ns = namespace_of(dataset);
  const json f = options.filter ? translate_filter(*options.filter, &entry) : json();
  const bool exact = keeps_exact_blob(entry.spec);
  const bool small = options.top_k * std::max<int64_t>(entry.row_bytes, 1) <= static_cast<int64_t>(k_response_budget);
  json body = {{"namespace", ns},
               {"topK", options.top_k},
               {"vector", vector},
               {"includeValues", small && options.include_values && !exact},
               {"includeMetadata", small}};
  if (!f.is_null()) {
    body["filter"] = f;
  }
  Connection& c = conn(entry.spec);
  const json matches = c.post("/query", body.dump()).parsed["matches"];
  std::map<std::string, json> records;
  if (!small) {
    // Big replies would pass the 4 MiB cap: take ids and scores, then fetch in chunks.
    std::vector<std::string> ids;
    for (const auto& m : matches) {
      ids.push_back(m.value("id", std::string()));
    }
    records = fetch_records(c, ns, ids, entry.row_bytes);
  }
  std::vector<QueryHit> hits;
  for (const auto& m : matches) {
    const std::string sid = m.value("id", std::string());
    json rec = small ? m : (records.count(sid) ? records[sid] : json());
    if (rec.is_null()) {
      continue;  // deleted between the query and the fetch
    }
    if (!small) {
      rec["score"] = m.value("score", 0.0);
    }
    if (!options.include_values || exact) {
      rec.erase("values");
    }
    DecodedRow row = decode_row(
        entry.spec, rec.contains("values") ? rec : [&] {
          json r = rec;
          if (!exact) {
            r["values"] = json::array();
            r["metadata"]["_zero"] = true;  // values not requested: decode without them
          }
          return r;
        }());
    QueryHit hit;
    hit.id = row.id;
    hit.index = row.index;
    const double s = m.value("score", 0.0);
    hit.score = entry.spec.metric == Metric::euclidean ? std::sqrt(std::max(0.0, s)) : s;
    if (options.include_values) {
      const Array f32 = row.sample.to_float32();
      hit.values = std::vector<float>(f32.as<float>(), f32.as<float>() + f32.size());
    }
    if (options.include_metadata) {
      hit.metadata = row.metadata;
    }
    hits.push_back(std::move(hit));
  }
  sort_hits(entry.spec.metric, hits);
  return hits;
}

}  // namespace
}  // namespace vstash::backends::pinecone

namespace vstash::backends::pinecone {
std::unique_ptr<Backend> create(const Profile& profile) { return std::make_unique<PineconeBackend>(profile); }
}  // namespace vstash::backends::pinecone
