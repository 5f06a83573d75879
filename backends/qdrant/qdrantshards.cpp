// SPDX-License-Identifier: MIT
// Point calls of a dataset placed under a shard key, sent to its shared collection.
#include "backends/qdrant/qdrantshards.hpp"

#include <cctype>
#include <string_view>

#include "backends/backend.hpp"
#include "backends/http/httpclient.hpp"

namespace vstash::backends::qdrant {

namespace {

constexpr std::string_view k_prefix = "/collections/";

void replace_all(std::string& text, std::string_view what, const std::string& with) {
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + with.size())) {
    text.replace(pos, what.size(), with);
  }
}

std::string collection_path_of(const std::string& name) { return std::string(k_prefix) + http::url_escape(name); }

}  // namespace

std::string ShardPlacement::collection_for(int64_t dimension, const std::string& distance) const {
  std::string metric = distance;
  for (auto& c : metric) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  std::string name = m_template;
  replace_all(name, "{dimension}", std::to_string(dimension));
  replace_all(name, "{metric}", metric);
  return name;
}

void ShardPlacement::remember(const std::string& dataset, const std::string& collection) {
  std::lock_guard lock(m_mutex);
  m_placed[collection_path_of(dataset)] = Placed{collection_path_of(collection), json(dataset).dump()};
}

void ShardPlacement::forget(const std::string& dataset) {
  std::lock_guard lock(m_mutex);
  m_placed.erase(collection_path_of(dataset));
}

void ShardPlacement::place(std::string& path, std::string& body) const {
  if (!enabled() || path.compare(0, k_prefix.size(), k_prefix) != 0) {
    return;
  }
  const size_t end = path.find_first_of("/?", k_prefix.size());
  if (end == std::string::npos || path.compare(end, 7, "/points") != 0) {
    return;
  }
  std::lock_guard lock(m_mutex);
  const auto it = m_placed.find(path.substr(0, end));
  if (it == m_placed.end()) {
    return;
  }
  path = it->second.collection_path + path.substr(end);
  const std::string field = "\"shard_key\":" + it->second.shard_key;
  if (body.empty() || body == "{}") {
    body = "{" + field + "}";
  } else if (body.front() == '{') {
    body.insert(1, field + ",");
  }
}

}  // namespace vstash::backends::qdrant
