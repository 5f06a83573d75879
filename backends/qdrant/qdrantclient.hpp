// SPDX-License-Identifier: MIT
// One Qdrant server seen through the shared HTTP layer: envelopes unwrapped, statuses mapped
// to vstash errors, the server version detected once.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/backend.hpp"
#include "backends/http/httpclient.hpp"
#include "backends/qdrant/qdrantdistribution.hpp"
#include "backends/qdrant/qdrantshards.hpp"

namespace vstash::backends::qdrant {

struct Call {
  std::string method;
  std::string path;  // "/collections/c/points?wait=true", components already escaped
  std::string body;  // JSON text, empty for none
};

class RestClient {
 public:
  // Every call carries the distribution's read consistency or write ordering (qdrantdistribution.hpp).
  RestClient(http::ClientOptions options, std::string base_url, std::vector<std::string> secrets,
             Distribution distribution = {});

  // "qdrant host:port" for messages.
  const std::string& location() const { return m_location; }
  // Sends one call and returns the envelope's "result", whose shape is checked for the
  // operations vstash reads (scroll, count, retrieve, query, search, writes). Non-2xx replies
  // are thrown by http::raise_for_status (auth failures: UsageError naming api_key); a reply
  // that cannot be understood twice is an Error naming the call.
  json call(const Call& call);
  // Like call, but a 404 gives nullopt.
  std::optional<json> call_or_missing(const Call& call);
  // Sends the calls concurrently (options.parallel at a time); results in order.
  std::vector<json> call_all(const std::vector<Call>& calls);
  // The server's version from GET / as {major, minor}; cached.
  std::pair<int, int> version();
  const std::string& version_text();
  http::ClientStats stats() const { return m_http.stats(); }
  const Distribution& distribution() const { return m_distribution; }
  // Where datasets under custom shard keys live; every call is placed through it.
  ShardPlacement& placement() { return m_placement; }

 private:
  // The HTTP request of a call, with the check of its 2xx reply's envelope and shape.
  http::Request request(const Call& call) const;
  json unwrap(const Call& call, http::Response& response, bool allow_missing, bool* missing) const;

  http::Client m_http;
  std::string m_base_url;
  std::string m_location;
  std::vector<std::string> m_secrets;
  Distribution m_distribution;
  ShardPlacement m_placement;
  std::optional<std::pair<int, int>> m_version;
  std::string m_version_text;
};

// "/collections/<escaped name>"
std::string collection_path(const std::string& collection);
// The shape the spec promises for a 2xx "result" of the operations vstash reads replies of
// (scroll, count, retrieve, query, search, writes); throws http::BadReply (fuzzed: tests/fuzz).
void check_result(const Call& call, const json& result);

// --- operations shared by the backend and the checkpoint code --------------------------------
// Writes wait for the change to be applied (wait=true: the server's default is false, which
// returns before the points are readable).
inline constexpr std::string_view k_wait = "?wait=true";
// Ids per retrieve/delete request: small bodies, replies sized by the caller's payload.
inline constexpr size_t k_ids_per_request = 1000;

// Creates the collection with one unnamed vector of size and distance, and the client's
// distribution parameters (shards, replicas, on_disk). Returns false when it
// already existed (409, or the 400 "already exists" of servers before 1.8).
// With custom_sharding, the collection is created with `sharding_method: custom`.
bool create_collection(RestClient& client, const std::string& collection, int64_t size, const std::string& distance,
                       bool custom_sharding = false);
// Creates a payload index (schema "keyword", "integer", "float", ...); idempotent.
void create_payload_index(RestClient& client, const std::string& collection, const std::string& field,
                          const std::string& schema);
// Every record matching body (a ScrollRequest; "limit" is the page size), following
// next_page_offset until it is null.
std::vector<json> scroll_all(RestClient& client, const std::string& collection, json body);
// Records by point id, requests of k_ids_per_request sent in parallel; missing ids are left
// out (match replies by id, not position).
std::vector<json> retrieve(RestClient& client, const std::string& collection, const std::vector<json>& ids,
                           const json& with_payload, bool with_vector);
// Upserts {"points":[...]} bodies in parallel (PUT /points?wait=true).
void upsert_bodies(RestClient& client, const std::string& collection, const std::vector<std::string>& bodies);
// Deletes points by id (POST /points/delete?wait=true), chunked.
void delete_points(RestClient& client, const std::string& collection, const std::vector<json>& ids);

}  // namespace vstash::backends::qdrant
