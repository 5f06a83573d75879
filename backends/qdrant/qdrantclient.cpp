// SPDX-License-Identifier: MIT
// Qdrant envelopes ({"result","status","time"} / {"status":{"error"}}) and status mapping.
#include "qdrantclient.hpp"

#include <algorithm>
#include <cstdio>
#include <fmt/format.h>

#include "../../src/errors.hpp"

namespace vstash::backends::qdrant {

namespace {

constexpr size_t k_max_message = 300;

std::string one_line(std::string text, const std::vector<std::string>& secrets) {
  for (auto& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      c = ' ';
    }
  }
  for (const auto& s : secrets) {
    for (size_t pos = s.empty() ? std::string::npos : text.find(s); pos != std::string::npos; pos = text.find(s, pos)) {
      text.replace(pos, s.size(), "***");
    }
  }
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
std::string operation(const Call& call) {
  return call.method + " " + call.path.substr(0, call.path.find('?'));
}

}  // namespace

std::string collection_path(const std::string& collection) {
  return "/collections/" + http::url_escape(collection);
}

RestClient::RestClient(http::ClientOptions options, std::string base_url, std::vector<std::string> secrets)
    : m_http(std::move(options)),
      m_base_url(std::move(base_url)),
      m_location("qdrant " + m_http.options().server),
      m_secrets(std::move(secrets)) {}

json RestClient::unwrap(const Call& call, const http::Response& r, bool allow_missing, bool* missing) const {
  if (r.status >= 200 && r.status < 300) {
    try {
      auto j = json::parse(r.body);
      if (!j.is_object() || !j.contains("result")) {
        throw Error(fmt::format("{}: {}: reply has no \"result\"", m_location, operation(call)));
      }
      return std::move(j["result"]);
    } catch (const json::parse_error&) {
      throw Error(fmt::format("{}: {}: reply is not JSON", m_location, operation(call)));
    }
  }
  const std::string message = one_line(error_text(r.body), m_secrets);
  const std::string context = fmt::format("{}: {}: HTTP {}: {}", m_location, operation(call), r.status, message);
  switch (r.status) {
    case 401:
    case 403:
      throw Error(fmt::format("{}: {}: authentication failed (HTTP {}): check api_key: {}", m_location,
                              operation(call), r.status, message));
    case 404:
      if (allow_missing) {
        *missing = true;
        return json();
      }
      throw NotFoundError(context);
    case 409:
      throw ConflictError(context);
    case 400:
    case 413:
    case 422:
      throw UsageError(context);
    default:
      if (r.status == 408 || r.status == 429 || r.status >= 500) {
        throw RetryableError(context);
      }
      throw Error(context);
  }
}

json RestClient::call(const Call& c) {
  auto r = m_http.send({c.method, m_base_url + c.path, {}, c.body});
  return unwrap(c, r, false, nullptr);
}

std::optional<json> RestClient::call_or_missing(const Call& c) {
  auto r = m_http.send({c.method, m_base_url + c.path, {}, c.body});
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
    requests.push_back({c.method, m_base_url + c.path, {}, c.body});
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
  auto r = m_http.send({c.method, m_base_url + c.path, {}, ""});
  if (r.status < 200 || r.status >= 300) {
    unwrap(c, r, false, nullptr);
  }
  int major = 0;
  int minor = 0;
  try {
    auto j = json::parse(r.body);
    m_version_text = j.value("version", "");
    if (std::sscanf(m_version_text.c_str(), "%d.%d", &major, &minor) != 2) {
      major = 0;
    }
  } catch (const json::exception&) {
  }
  if (major == 0 && minor == 0) {
    throw Error(fmt::format("{}: GET /: not a qdrant server (no version in the reply)", m_location));
  }
  m_version = {major, minor};
  return *m_version;
}

bool create_collection(RestClient& client, const std::string& collection, int64_t size, const std::string& distance) {
  const json body = {{"vectors", {{"size", size}, {"distance", distance}}}};
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
