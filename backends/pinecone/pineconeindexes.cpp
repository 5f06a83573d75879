// SPDX-License-Identifier: MIT
// Consistency: Pinecone applies writes asynchronously. With profile key `wait` (default true)
// every write call returns only once its LSN is indexed (polling describe_index_stats), so a
// read that follows sees it.
#include "backends/pinecone/pineconeindexes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "src/errors.hpp"

namespace vstash::backends::pinecone {

namespace {

constexpr auto k_wait_deadline = std::chrono::seconds(120);

std::string home_index_name(const Profile& profile) {
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

std::string ids_query(const std::string& ns, const std::vector<std::string>& ids) {
  std::string q = "/vectors/fetch?namespace=" + http::url_escape(ns);
  for (const auto& id : ids) {
    q += "&ids=" + http::url_escape(id);
  }
  return q;
}

}  // namespace

Indexes::Indexes(const Profile& profile)
    : m_profile(profile),
      m_index_template(profile.get_string("index_name", "")),
      m_home(profile, home_index_name(profile)),
      m_prefix(profile.get_string("namespace_prefix", "")),
      m_wait(profile.get_bool("wait", true)),
      m_profile_dimension(profile.get_int("dimension", 0)),
      m_profile_metric(parse_metric(profile.get_string("metric", "cosine"))) {}

Connection& Indexes::of(const DatasetSpec& spec) {
  if (!is_index_template(m_index_template)) {
    return m_home;
  }
  const std::string name = expand_index_name(m_index_template, spec.dimension(), spec.metric);
  if (name == m_home.index_name()) {
    return m_home;
  }
  std::lock_guard lock(m_mutex);
  auto& slot = m_others[name];
  if (!slot) {
    slot = std::make_unique<Connection>(m_profile, name);
  }
  return *slot;
}

int64_t Indexes::home_dimension() {
  return m_home.index(IndexRequest{m_profile_dimension, m_profile_metric}).dimension;
}

std::string Indexes::namespace_of(const std::string& dataset) const {
  if (dataset.rfind("__vstash_", 0) == 0) {
    throw UsageError(fmt::format("dataset \"{}\": names starting with \"__vstash_\" are reserved", dataset));
  }
  std::string ns = m_prefix + dataset;
  return ns == "__default__" ? std::string() : ns;
}

void Indexes::upsert(Connection& c, const std::string& ns, const std::vector<std::string>& records) {
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

std::map<std::string, json> Indexes::fetch(Connection& c, const std::string& ns, const std::vector<std::string>& ids,
                                           int64_t row_bytes) {
  const size_t per_reply = std::clamp<size_t>(k_response_budget / static_cast<size_t>(std::max<int64_t>(row_bytes, 1)),
                                              1, k_max_ids_per_request);
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

std::vector<json> Indexes::fetch_all(Connection& c, const std::string& ns, const std::string& prefix,
                                     int64_t row_bytes) {
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
  for (auto& [id, rec] : fetch(c, ns, ids, row_bytes)) {
    out.push_back(std::move(rec));
  }
  return out;
}

void Indexes::remove(Connection& c, const std::string& ns, const std::vector<std::string>& ids) {
  std::vector<http::Request> requests;
  for (size_t i = 0; i < ids.size(); i += k_max_ids_per_request) {
    const auto end = std::min(ids.size(), i + k_max_ids_per_request);
    json body = {{"ids", std::vector<std::string>(ids.begin() + static_cast<ptrdiff_t>(i),
                                                  ids.begin() + static_cast<ptrdiff_t>(end))},
                 {"namespace", ns}};
    requests.push_back(c.make_post("/vectors/delete", body.dump()));
  }
  c.send_all(std::move(requests));
}

json Indexes::namespace_counts(Connection& c) {
  const auto resp = c.post("/describe_index_stats", "{}");
  return resp.parsed.value("namespaces", json::object());
}

int64_t Indexes::namespace_rows(const json& counts, const std::string& ns) {
  for (const std::string& key : {ns.empty() ? std::string("__default__") : ns, ns}) {
    if (counts.contains(key) && counts[key].is_object()) {
      const json n = counts[key].value("vectorCount", json(0));
      return n.is_number_integer() ? n.get<int64_t>() : 0;
    }
  }
  return 0;
}

void Indexes::settle() {
  if (!m_wait) {
    return;
  }
  std::vector<Connection*> all{&m_home};
  {
    std::lock_guard lock(m_mutex);
    for (auto& [name, c] : m_others) {
      all.push_back(c.get());
    }
  }
  for (Connection* c : all) {
    settle(*c);
  }
}

void Indexes::settle(Connection& c) {
  const int64_t want = c.last_write_lsn();
  {
    std::lock_guard lock(m_mutex);
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
      std::lock_guard lock(m_mutex);
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

}  // namespace vstash::backends::pinecone
