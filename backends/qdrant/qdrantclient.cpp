// SPDX-License-Identifier: MIT
// Qdrant envelopes ({"result","status","time"} / {"status":{"error"}}) and status mapping.
#include "backends/qdrant/qdrantclient.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstdio>

#include "src/errors.hpp"
#include "src/util/scrub.hpp"

namespace vstash::backends::qdrant {

namespace {

constexpr size_t k_max_message = 300;

std::string one_line(std::string text, const std::vector<std::string>& secrets) {
  for (auto& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      c = ' ';
    }
  }
  text = util::scrub_secrets(std::move(text), secrets);
  if (text.size() > k_max_message) {
    text = text.substr(0, k_max_message) + "...";
  }
  return text;
}

// The error text of a reply: {"status":{"error"}} when JSON, else the plain body (401/403).
std::string error_text(const std::string& body) {
  try {
    auto j = json::parse(body);
    if (j.is_object() && j.contains("status") && j["status"].is_object() && j["status"].contains("error")) {
      const auto& e = j["status"]["error"];
      return e.is_string() ? e.get<std::string>() : e.dump();
    }
  } catch (const json::exception&) {
  }
  return body;
}

// Only the path, without the query string, names an operation in messages.
std::string operation(const Call& call) { return call.method + " " + call.path.substr(0, call.path.find('?')); }

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

void require_points(const json& points, bool scored) {
  if (!points.is_array()) {
    throw http::BadReply("\"points\" is not an array");
  }
  for (const auto& p : points) {
    if (!p.is_object() || !p.contains("id") || !(p["id"].is_string() || p["id"].is_number_unsigned())) {
      throw http::BadReply("a point without a valid \"id\"");
    }
    if (scored && !p.value("score", json()).is_number()) {
      throw http::BadReply("a scored point without a numeric \"score\"");
    }
  }
}

}  // namespace

void check_result(const Call& call, const json& result) {
  const std::string_view path = std::string_view(call.path).substr(0, call.path.find('?'));
  const bool points_op = path.find("/points") != std::string_view::npos;
  if (call.method == "POST" && ends_with(path, "/points/scroll")) {
    if (!result.is_object() || !result.contains("next_page_offset")) {
      throw http::BadReply("scroll result without \"points\" and \"next_page_offset\"");
    }
    require_points(result.value("points", json()), false);
  } else if (call.method == "POST" && ends_with(path, "/points/count")) {
    if (!result.is_object() || !result.value("count", json()).is_number_unsigned()) {
      throw http::BadReply("count result without a non-negative integer \"count\"");
    }
  } else if (call.method == "POST" && ends_with(path, "/points/query")) {
    if (!result.is_object()) {
      throw http::BadReply("query result is not an object");
    }
    require_points(result.value("points", json()), true);
  } else if (call.method == "POST" && ends_with(path, "/points/search")) {
    require_points(result, true);
  } else if (call.method == "POST" && ends_with(path, "/points")) {
    require_points(result, false);
  } else if (points_op && (call.method == "PUT" || call.method == "POST")) {
    // Writes: an UpdateResult.
    if (!result.is_object() || !result.value("status", json()).is_string()) {
      throw http::BadReply("write result without an UpdateResult \"status\"");
    }
  }
}

std::string collection_path(const std::string& collection) { return "/collections/" + http::url_escape(collection); }

RestClient::RestClient(http::ClientOptions options, std::string base_url, std::vector<std::string> secrets,
                       Distribution distribution)
    : m_http(std::move(options)),
      m_base_url(std::move(base_url)),
      m_location("qdrant " + m_http.options().server),
      m_secrets(std::move(secrets)),
      m_distribution(std::move(distribution)),
      m_placement(m_distribution.shard_collection) {}

http::Request RestClient::request(const Call& c) const {
  std::string path = c.path;
  std::string body = c.body;
  m_placement.place(path, body);
  http::Request r{c.method, m_base_url + with_request_params(m_distribution, c.method, path), {}, std::move(body), {}};
  // Every 2xx reply is an envelope {"result": ...} whose result has the operation's shape.
  r.check = [c](http::Response& response) {
    response.parsed = json::parse(response.body);
    if (!response.parsed.is_object() || !response.parsed.contains("result")) {
      throw http::BadReply("no \"result\" in the reply");
    }
    check_result(c, response.parsed["result"]);
  };
  return r;
}

json RestClient::unwrap(const Call& call, http::Response& r, bool allow_missing, bool* missing) const {
  if (r.status >= 200 && r.status < 300) {
    return std::move(r.parsed["result"]);  // checked by the request's check
  }
  if (r.status == 404 && allow_missing) {
    *missing = true;
    return json();
  }
  http::raise_for_status(r, fmt::format("{}: {}", m_location, operation(call)), one_line(error_text(r.body), m_secrets),
                         "api_key");
}

json RestClient::call(const Call& c) {
  auto r = m_http.send(request(c));
  return unwrap(c, r, false, nullptr);
}

std::optional<json> RestClient::call_or_missing(const Call& c) {
  auto r = m_http.send(request(c));
  bool missing = false;
  json result = unwrap(c, r, true, &missing);
  if (missing) {
    return std::nullopt;
  }
  return result;
}

std::vector<json> RestClient::call_all(const std::vector<Call>& calls) {
  std::vector<http::Request> requests;
  requests.reserve(calls.size());
  for (const auto& c : calls) {
    requests.push_back(request(c));
  }
  auto responses = m_http.send_all(requests);
  std::vector<json> results;
  results.reserve(calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    results.push_back(unwrap(calls[i], responses[i], false, nullptr));
  }
  return results;
}

const std::string& RestClient::version_text() {
  version();
  return m_version_text;
}

std::pair<int, int> RestClient::version() {
  if (m_version) {
    return *m_version;
  }
  Call c{"GET", "/", ""};
  http::Request req{c.method, m_base_url + c.path, {}, "", {}};
  req.check = [](http::Response& response) {
    response.parsed = json::parse(response.body);
    if (!response.parsed.is_object() || !response.parsed.value("version", json()).is_string()) {
      throw http::BadReply("no \"version\" in the reply of GET /");
    }
  };
  auto r = m_http.send(req);
  if (r.status < 200 || r.status >= 300) {
    unwrap(c, r, false, nullptr);
  }
  int major = 0;
  int minor = 0;
  m_version_text = r.parsed["version"].get<std::string>();
  if (std::sscanf(m_version_text.c_str(), "%d.%d", &major, &minor) != 2) {
    major = 0;
  }
  if (major == 0 && minor == 0) {
    throw Error(fmt::format("{}: GET /: not a qdrant server (no version in the reply)", m_location));
  }
  m_version = {major, minor};
  return *m_version;
}

bool create_collection(RestClient& client, const std::string& collection, int64_t size, const std::string& distance,
                       bool custom_sharding) {
  json body = {{"vectors", {{"size", size}, {"distance", distance}}}};
  add_collection_params(client.distribution(), body);
  if (custom_sharding) {
    body["sharding_method"] = "custom";
  }
  try {
    client.call({"PUT", collection_path(collection), body.dump()});
    return true;
  } catch (const ConflictError&) {
    return false;
  } catch (const UsageError& e) {
    if (std::string_view(e.what()).find("already exists") != std::string_view::npos) {
      return false;  // servers before 1.8 answer 400
    }
    throw;
  }
}

void create_payload_index(RestClient& client, const std::string& collection, const std::string& field,
                          const std::string& schema) {
  const json body = {{"field_name", field}, {"field_schema", schema}};
  client.call({"PUT", collection_path(collection) + "/index" + std::string(k_wait), body.dump()});
}

std::vector<json> scroll_all(RestClient& client, const std::string& collection, json body) {
  std::vector<json> out;
  const std::string path = collection_path(collection) + "/points/scroll";
  for (;;) {
    json result = client.call({"POST", path, body.dump()});
    for (auto& p : result.at("points")) {
      out.push_back(std::move(p));
    }
    const json next = result.value("next_page_offset", json());
    if (next.is_null()) {
      return out;
    }
    body["offset"] = next;
  }
}

std::vector<json> retrieve(RestClient& client, const std::string& collection, const std::vector<json>& ids,
                           const json& with_payload, bool with_vector) {
  std::vector<Call> calls;
  for (size_t i = 0; i < ids.size(); i += k_ids_per_request) {
    const auto end = std::min(ids.size(), i + k_ids_per_request);
    const json body = {{"ids", json(std::vector<json>(ids.begin() + static_cast<ptrdiff_t>(i),
                                                      ids.begin() + static_cast<ptrdiff_t>(end)))},
                       {"with_payload", with_payload},
                       {"with_vector", with_vector}};
    calls.push_back({"POST", collection_path(collection) + "/points", body.dump()});
  }
  std::vector<json> out;
  for (auto& result : client.call_all(calls)) {
    for (auto& r : result) {
      out.push_back(std::move(r));
    }
  }
  return out;
}

void upsert_bodies(RestClient& client, const std::string& collection, const std::vector<std::string>& bodies) {
  std::vector<Call> calls;
  calls.reserve(bodies.size());
  for (const auto& b : bodies) {
    calls.push_back({"PUT", collection_path(collection) + "/points" + std::string(k_wait), b});
  }
  client.call_all(calls);
}

void delete_points(RestClient& client, const std::string& collection, const std::vector<json>& ids) {
  std::vector<Call> calls;
  for (size_t i = 0; i < ids.size(); i += k_ids_per_request) {
    const auto end = std::min(ids.size(), i + k_ids_per_request);
    const json body = {{"points", json(std::vector<json>(ids.begin() + static_cast<ptrdiff_t>(i),
                                                         ids.begin() + static_cast<ptrdiff_t>(end)))}};
    calls.push_back({"POST", collection_path(collection) + "/points/delete" + std::string(k_wait), body.dump()});
  }
  client.call_all(calls);
}

}  // namespace vstash::backends::qdrant
