// SPDX-License-Identifier: MIT
// Internals shared by the Pinecone backend's files: wire limits, the filter and metadata
// rules (pineconefilter.cpp), the record forms (pineconerecords.cpp) and the connection to both
// planes (pineconecontrol.cpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.hpp"
#include "backends/http/httpclient.hpp"

namespace vstash::backends::pinecone {

// The pinned API version (README "Pinecone"): without the header Pinecone serves its oldest
// supported version, which changes over time.
inline constexpr std::string_view k_api_version = "2026-04";
inline constexpr size_t k_max_request_bytes = 2 * 1024 * 1024;
inline constexpr size_t k_max_upsert_vectors = 1000;
inline constexpr size_t k_max_ids_per_request = 1000;
inline constexpr size_t k_max_metadata_bytes = 40960;
inline constexpr size_t k_max_id_bytes = 512;
inline constexpr int64_t k_max_top_k = 10000;
// Query responses are capped at 4 MiB; plan reads to stay well under it.
inline constexpr size_t k_response_budget = 3 * 1024 * 1024;
inline constexpr size_t k_max_url_bytes = 7000;

// --- pineconefilter.cpp ---------------------------------------------------------------------
// The Pinecone form of a vstash filter (null for an empty filter). $ne/$nin also match
// records without the field in vstash, so they become {"$or": [op, {"k": {"$exists": false}}]}.
// $label becomes the rows' "_lval" field; it needs the dataset's catalog entry (UsageError when
// the dataset has no scalar labels or predates _lval).
struct CatalogEntry;
json translate_filter(const Filter& filter, const CatalogEntry* entry = nullptr);
// Compact serialized size, the measure of the 40960-byte metadata limit.
size_t metadata_bytes(const json& metadata);
// Checks user metadata before sending: an object, no null value (leave the key out), no reserved
// key, at most 40960 bytes. Throws UsageError naming the dataset and the record id.
void check_user_metadata(const json& metadata, const std::string& dataset, const std::string& id);
// True for values Pinecone stores as they are: strings, bools, finite numbers (integers within
// +-2^53, which float64 holds exactly) and lists of strings. Other values (nested objects, lists
// of numbers or objects, larger integers) are kept exactly, JSON-encoded together in the
// reserved key "_json"; Pinecone cannot filter on them (README "Pinecone").
bool is_native_value(const json& value);
// Pinecone stores numbers as float64 and returns 3 as 3.0; integral values come back as integers.
json normalize_numbers(json metadata);
// Keys the backend keeps in each record's metadata.
bool is_reserved_key(std::string_view key);

// --- pineconerecords.cpp -------------------------------------------------------------------
// A dataset's catalog record: its spec plus counters, kept in the reserved catalog namespace.
struct CatalogEntry {
  DatasetSpec spec;
  int64_t next_index = 0;
  int64_t row_bytes = 0;     // largest serialized row record written, to size reads under 4 MiB
  bool label_field = false;  // rows carry "_lval", the scalar label as a number or bool ($label)
  bool writers = false;      // writer parts exist (backends/common/writerparts.hpp)
};
inline constexpr std::string_view k_catalog_ns = "__vstash_catalog__";
inline constexpr std::string_view k_checkpoint_ns = "__vstash_checkpoints__";
inline constexpr std::string_view k_progress_ns = "__vstash_progress__";

// The record id Pinecone stores: the id itself, or "vstash-sha1:<hex of the id>" when it is
// longer than 512 bytes (the original is kept in metadata "_id").
std::string stored_id(const std::string& id);
// "[1,0,0,...]": the non-zero placeholder vector of records that hold no searchable data.
std::string unit_vector_json(int64_t dimension);
// Appends {"id":..,"values":..,"metadata":..} for a record with a placeholder vector.
std::string placeholder_record(const std::string& id, int64_t dimension, const json& metadata);
// The catalog record's metadata is flat (Pinecone metadata holds no nested values): the spec's
// JSON form (backends/common/catalog.hpp) with the shapes and dataset metadata as JSON text and
// the row shape under "shape", plus "kind", "dataset" and the counters.
std::string catalog_record(const CatalogEntry& entry, int64_t dimension);
// Throws Error naming the dataset for a record that is not a catalog entry.
CatalogEntry parse_catalog(const json& metadata);
// True when rows keep an exact "_data" blob (dtype other than float32, or not 1-D).
bool keeps_exact_blob(const DatasetSpec& spec);
// Serialized records of a batch (already checked with check_batch); throws UsageError naming
// the row whose metadata exceeds 40960 bytes.
struct EncodedRows {
  std::vector<std::string> records;
  std::vector<std::string> stored_ids;
  size_t max_bytes = 0;
};
EncodedRows encode_rows(const DatasetSpec& spec, const RowBatch& batch, const std::vector<int64_t>& indices);
// Builds the metadata of one row record (user metadata + reserved keys).
json row_metadata(const DatasetSpec& spec, const std::string& id, int64_t index, const Array& sample_row,
                  const Array* label_row, const json& user);
// A row read back from a fetch/query record ({"id","values","metadata"}).
struct DecodedRow {
  std::string id;
  int64_t index = -1;
  Array sample;                // shape = row_shape
  std::optional<Array> label;  // shape = label_shape
  json metadata;               // user keys only; null when there are none
};
DecodedRow decode_row(const DatasetSpec& spec, const json& record);
RowBatch assemble_rows(const DatasetSpec& spec, std::vector<DecodedRow>& rows);

// --- pineconecontrol.cpp --------------------------------------------------------------------
// The shape the data-plane spec promises for a 2xx reply to path ("/query", "/vectors/fetch",
// ...; the upsert count is checked by the caller, which knows how many records it sent). Keeps
// the parsed body in r.parsed; throws http::BadReply or a nlohmann exception (fuzzed: tests/fuzz).
void check_data_reply(std::string_view path, http::Response& r);
struct IndexInfo {
  std::string name;
  std::string host;  // data-plane base URL with scheme
  int64_t dimension = 0;
  Metric metric = Metric::cosine;
  bool ready = false;
};

// What to create when the index is missing.
struct IndexRequest {
  int64_t dimension = 0;
  Metric metric = Metric::cosine;
};

// Both planes behind one object: the API key and version headers, final statuses mapped to
// errors (which statuses are retried is backends/http/statuspolicy.hpp's decision), and the
// index description fetched once per process and cached.
class Connection {
 public:
  // index_name overrides the profile's (an expanded index-name template); "{index}" in the
  // profile's `host` is replaced by the index name.
  explicit Connection(const Profile& profile, const std::string& index_name = "");

  // The index, described once per process (cached across Backend instances). When it does
  // not exist and `create` is given and the profile has cloud and region, creates a serverless
  // index and polls describe until ready. Throws NotFoundError otherwise.
  const IndexInfo& index(const std::optional<IndexRequest>& create = std::nullopt);
  // Data-plane call (path like "/query"); non-2xx replies are thrown as vstash errors.
  http::Response post(const std::string& path, const std::string& body);
  http::Response get(const std::string& path_and_query);
  // Many data-plane requests in parallel, each checked like post/get.
  std::vector<http::Response> send_all(std::vector<http::Request> requests);
  http::Request make_post(const std::string& path, std::string body);
  http::Request make_get(const std::string& path_and_query);

  const std::string& index_name() const { return m_index_name; }
  // "pinecone index NAME" or the host override, for messages.
  std::string location() const;
  http::ClientStats stats() const;
  int64_t last_write_lsn() const { return m_last_lsn; }

 private:
  void check(const http::Request& request, const http::Response& response);
  http::Client& data_client();
  std::string control_url(const std::string& path) const;

  std::string m_index_name;
  std::string m_control_base;   // https://api.pinecone.io or the control_host override
  std::string m_host_override;  // profile `host`
  std::string m_cloud;
  std::string m_region;
  http::ClientOptions m_options;
  std::unique_ptr<http::Client> m_control;
  std::unique_ptr<http::Client> m_data;
  std::mutex m_mutex;
  const IndexInfo* m_info = nullptr;
  std::atomic<int64_t> m_last_lsn{0};  // highest x-pinecone-request-lsn of our writes
};

// Profile `index_name` may be a template holding "{dimension}" and/or "{metric}": each dataset
// then lives in the index named for its own dimension and metric (created on demand), instead
// of every dataset sharing one index and failing when its shape does not match.
bool is_index_template(const std::string& index_name);
// The template with the placeholders filled ("dot" for the dot metric); throws UsageError when
// the result is not a valid Pinecone index name (1-45 of [a-z0-9-], alphanumeric at both ends).
std::string expand_index_name(const std::string& index_name, int64_t dimension, Metric metric);

// "https://" + host unless host already names a scheme; http:// when the control plane itself
// is plain http (a loopback double).
std::string data_base_url(const std::string& host, const std::string& control_base);
// Pinecone's metric name for a vstash metric.
std::string_view wire_metric(Metric metric);

}  // namespace vstash::backends::pinecone
