// SPDX-License-Identifier: MIT
// The Pinecone control plane (describe once per process, create a serverless index and wait
// until ready) and the checked HTTP calls both planes share.
#include <fmt/format.h>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <map>
#include <thread>

#include "backends/pinecone/pineconeinternal.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "src/util/scrub.hpp"

namespace vstash::backends::pinecone {

namespace {

constexpr auto k_ready_deadline = std::chrono::seconds(300);

bool has_scheme(const std::string& s) { return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0; }

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

void require(bool ok, const char* what) {
  if (!ok) {
    throw http::BadReply(what);
  }
}

}  // namespace

void check_data_reply(std::string_view path, http::Response& r) {
  r.parsed = json::parse(r.body);
  require(r.parsed.is_object(), "reply is not a JSON object");
  const json& j = r.parsed;
  if (ends_with(path, "/query")) {
    require(j.contains("matches") && j["matches"].is_array(), "no \"matches\" array");
    for (const auto& m : j["matches"]) {
      require(m.is_object() && m.value("id", json()).is_string() && m.value("score", json()).is_number(),
              "a match without a string \"id\" and a numeric \"score\"");
    }
  } else if (ends_with(path, "/vectors/fetch")) {
    const json vectors = j.value("vectors", json::object());  // named: items() of a temporary dangles
    require(vectors.is_object(), "\"vectors\" is not an object");
    for (const auto& [id, rec] : vectors.items()) {
      require(rec.is_object(), "a fetched vector is not an object");
    }
  } else if (ends_with(path, "/vectors/list")) {
    const json vectors = j.value("vectors", json::array());
    require(vectors.is_array(), "\"vectors\" is not an array");
    for (const auto& v : vectors) {
      require(v.is_object() && v.value("id", json()).is_string(), "a listed vector without a string \"id\"");
    }
  } else if (ends_with(path, "/describe_index_stats")) {
    require(j.value("namespaces", json::object()).is_object(), "\"namespaces\" is not an object");
  } else if (ends_with(path, "/vectors/upsert")) {
    require(j.value("upsertedCount", json()).is_number_unsigned(), "no \"upsertedCount\"");
  }
}

namespace {

std::string server_message(const std::string& body) {
  try {
    const json j = json::parse(body);
    if (j.contains("error") && j["error"].is_object() && j["error"].value("message", json()).is_string()) {
      return j["error"]["message"].get<std::string>();
    }
    if (j.is_object() && j.value("message", json()).is_string()) {
      return j["message"].get<std::string>();
    }
  } catch (const json::exception&) {
  }
  std::string text = body.substr(0, 300);
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

// Process-wide describe cache: one describe per index per run however many backends exist.
std::mutex g_cache_mutex;
std::map<std::string, IndexInfo>& index_cache() {
  static std::map<std::string, IndexInfo> cache;
  return cache;
}

}  // namespace

std::string_view wire_metric(Metric metric) {
  switch (metric) {
    case Metric::cosine:
      return "cosine";
    case Metric::euclidean:
      return "euclidean";
    case Metric::dot:
      return "dotproduct";
  }
  return "cosine";
}

std::string data_base_url(const std::string& host, const std::string& control_base) {
  if (has_scheme(host)) {
    return host;
  }
  return (control_base.rfind("http://", 0) == 0 ? "http://" : "https://") + host;
}

bool is_index_template(const std::string& index_name) {
  return index_name.find("{dimension}") != std::string::npos || index_name.find("{metric}") != std::string::npos;
}

std::string expand_index_name(const std::string& index_name, int64_t dimension, Metric metric) {
  std::string out = index_name;
  auto fill = [&out](const std::string& key, const std::string& value) {
    for (auto p = out.find(key); p != std::string::npos; p = out.find(key, p + value.size())) {
      out.replace(p, key.size(), value);
    }
  };
  fill("{dimension}", std::to_string(dimension));
  fill("{metric}", std::string(metric_name(metric)));
  const bool valid_chars = std::all_of(
      out.begin(), out.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
  if (out.empty() || out.size() > 45 || !valid_chars || out.front() == '-' || out.back() == '-') {
    throw UsageError(
        fmt::format("index_name \"{}\" gives \"{}\": pinecone index names are 1 to 45 lowercase "
                    "letters, digits or '-', starting and ending with a letter or digit",
                    index_name, out));
  }
  return out;
}

Connection::Connection(const Profile& profile, const std::string& index_name) {
  m_index_name = !index_name.empty() ? index_name : profile.get_string("index_name", profile.get_string("dataset", ""));
  if (m_index_name.empty()) {
    throw UsageError(fmt::format("profile \"{}\" ({}): missing key \"index_name\"", profile.name(), profile.source()));
  }
  std::string key = profile.get_string("api_key", "");
  if (key.empty() && std::getenv("PINECONE_API_KEY") != nullptr) {
    key = std::getenv("PINECONE_API_KEY");
  }
  if (key.empty()) {
    throw UsageError(fmt::format("profile \"{}\" ({}): missing key \"api_key\" (or set PINECONE_API_KEY)",
                                 profile.name(), profile.source()));
  }
  const std::string control = profile.get_string("control_host", "api.pinecone.io");
  m_control_base = has_scheme(control) ? control : "https://" + control;
  while (!m_control_base.empty() && m_control_base.back() == '/') {
    m_control_base.pop_back();
  }
  m_host_override = profile.get_string("host", "");
  for (auto p = m_host_override.find("{index}"); p != std::string::npos; p = m_host_override.find("{index}", p)) {
    m_host_override.replace(p, 7, m_index_name);
  }
  m_cloud = profile.get_string("cloud", "");
  m_region = profile.get_string("region", "");
  m_options.connect_timeout_ms = profile.get_int("connect_timeout_ms", m_options.connect_timeout_ms);
  m_options.timeout_ms = profile.get_int("timeout_ms", m_options.timeout_ms);
  m_options.parallel = static_cast<int>(std::clamp<int64_t>(profile.get_int("parallel", 4), 1, 64));
  m_options.max_attempts = static_cast<int>(std::clamp<int64_t>(profile.get_int("max_attempts", 5), 1, 100));
  m_options.default_headers = {{"Api-Key", key}, {"X-Pinecone-Api-Version", std::string(k_api_version)}};
  m_options.service = "pinecone";
  http::set_tls_files(m_options, profile);
  http::ClientOptions control_options = m_options;
  control_options.server = m_control_base;
  m_control = std::make_unique<http::Client>(control_options);
}

std::string Connection::location() const {
  return m_host_override.empty() ? fmt::format("pinecone index \"{}\"", m_index_name)
                                 : fmt::format("pinecone {}", m_host_override);
}

std::string Connection::control_url(const std::string& path) const { return m_control_base + path; }

const IndexInfo& Connection::index(const std::optional<IndexRequest>& create) {
  std::lock_guard lock(m_mutex);
  if (m_info != nullptr) {
    return *m_info;
  }
  const std::string cache_key = m_control_base + "\n" + m_index_name;
  {
    std::lock_guard cache_lock(g_cache_mutex);
    auto it = index_cache().find(cache_key);
    if (it != index_cache().end()) {
      m_info = &it->second;
      return *m_info;
    }
  }
  const std::string path = "/indexes/" + http::url_escape(m_index_name);
  auto describe = [&] {
    http::Request req{"GET", control_url(path), {}, {}, {}};
    return std::pair(req, m_control->send(req));
  };
  auto [req, resp] = describe();
  if (resp.status == 404) {
    if (!create) {
      throw NotFoundError(fmt::format("{}: index does not exist", location()));
    }
    if (m_cloud.empty() || m_region.empty()) {
      throw NotFoundError(
          fmt::format("{}: index does not exist; set cloud and region in the profile to create it", location()));
    }
    json body = {{"name", m_index_name},
                 {"dimension", create->dimension},
                 {"metric", wire_metric(create->metric)},
                 {"spec", {{"serverless", {{"cloud", m_cloud}, {"region", m_region}}}}},
                 {"vector_type", "dense"},
                 {"deletion_protection", "disabled"}};
    http::Request post{"POST", control_url("/indexes"), {{"Content-Type", "application/json"}}, body.dump(), {}};
    const auto created = m_control->send(post);
    // 409: created meanwhile by another process (or by an attempt whose reply was lost).
    if (created.status != 201 && created.status != 409) {
      check(post, created);
    }
    resp = created.status == 201 ? created : describe().second;
  } else {
    check(req, resp);
  }
  const auto deadline = std::chrono::steady_clock::now() + k_ready_deadline;
  auto pause = std::chrono::milliseconds(100);
  for (;;) {
    check(req, resp);
    const json j = json::parse(resp.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      throw Error(fmt::format("{}: describe returned malformed JSON", location()));
    }
    if (j.value("status", json::object()).value("ready", false)) {
      IndexInfo info;
      info.name = m_index_name;
      info.dimension = j.value("dimension", int64_t{0});
      info.metric = parse_metric(j.value("metric", std::string("cosine")));
      info.ready = true;
      const std::string host = m_host_override.empty() ? j.value("host", std::string()) : m_host_override;
      info.host = data_base_url(host, m_control_base);
      while (!info.host.empty() && info.host.back() == '/') {
        info.host.pop_back();
      }
      std::lock_guard cache_lock(g_cache_mutex);
      m_info = &index_cache().insert_or_assign(cache_key, info).first->second;
      return *m_info;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw RetryableError(fmt::format("{}: index not ready after {} s (state \"{}\")", location(),
                                       k_ready_deadline.count(),
                                       j.value("status", json::object()).value("state", std::string("?"))));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(5000));
    resp = describe().second;
  }
}

http::Client& Connection::data_client() {
  const IndexInfo& info = index();
  std::lock_guard lock(m_mutex);
  if (!m_data) {
    http::ClientOptions options = m_options;
    options.server = info.host;
    m_data = std::make_unique<http::Client>(options);
  }
  return *m_data;
}

void Connection::check(const http::Request& request, const http::Response& response) {
  if (response.status >= 200 && response.status < 300) {
    if (auto it = response.headers.find("x-pinecone-request-lsn"); it != response.headers.end()) {
      const int64_t lsn = std::atoll(it->second.c_str());
      int64_t seen = m_last_lsn.load();
      while (lsn > seen && !m_last_lsn.compare_exchange_weak(seen, lsn)) {
      }
    }
    return;
  }
  std::string what = request.url;
  if (auto q = what.find('?'); q != std::string::npos) {
    what.resize(q);
  }
  std::string message = server_message(response.body);
  for (const auto& [name, value] : m_options.default_headers) {
    if (name == "Api-Key") {
      message = util::scrub_secrets(std::move(message), {value});
    }
  }
  http::raise_for_status(response, fmt::format("{}: {} {}", location(), request.method, what), message, "api_key");
}

http::Request Connection::make_post(const std::string& path, std::string body) {
  http::Request r{"POST", index().host + path, {{"Content-Type", "application/json"}}, std::move(body), {}};
  r.check = [path](http::Response& response) { check_data_reply(path, response); };
  return r;
}

http::Request Connection::make_get(const std::string& path_and_query) {
  const std::string path = path_and_query.substr(0, path_and_query.find('?'));
  http::Request r{"GET", index().host + path_and_query, {}, {}, {}};
  r.check = [path](http::Response& response) { check_data_reply(path, response); };
  return r;
}

http::Response Connection::post(const std::string& path, const std::string& body) {
  auto req = make_post(path, body);
  auto resp = data_client().send(req);
  check(req, resp);
  return resp;
}

http::Response Connection::get(const std::string& path_and_query) {
  auto req = make_get(path_and_query);
  auto resp = data_client().send(req);
  check(req, resp);
  return resp;
}

std::vector<http::Response> Connection::send_all(std::vector<http::Request> requests) {
  auto responses = data_client().send_all(requests);
  for (size_t i = 0; i < responses.size(); ++i) {
    check(requests[i], responses[i]);
  }
  return responses;
}

http::ClientStats Connection::stats() const {
  http::ClientStats s = m_control->stats();
  if (m_data) {
    const auto d = m_data->stats();
    s.requests += d.requests;
    s.retries += d.retries;
    s.bytes_sent += d.bytes_sent;
  }
  return s;
}

}  // namespace vstash::backends::pinecone
