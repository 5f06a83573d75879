// SPDX-License-Identifier: MIT
// One Qdrant server seen through the shared HTTP layer: envelopes unwrapped, statuses mapped
// to vstash errors, the server version detected once.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../backend.hpp"
#include "../http/httpclient.hpp"

namespace vstash::backends::qdrant {

struct Call {
  std::string method;
  std::string path;  // "/collections/c/points?wait=true", components already escaped
  std::string body;  // JSON text, empty for none
};

class RestClient {
 public:
  RestClient(http::ClientOptions options, std::string base_url, std::vector<std::string> secrets);

  // "qdrant host:port" for messages.
  const std::string& location() const { return m_location; }
  // Sends one call and returns the envelope's "result". Throws NotFoundError (404),
  // ConflictError (409), UsageError (400/413/422), Error for auth failures and anything else,
  // RetryableError once the retry policy gives up.
  json call(const Call& call);
  // Like call, but a 404 gives nullopt.
  std::optional<json> call_or_missing(const Call& call);
  // Sends the calls concurrently (options.parallel at a time); results in order.
  std::vector<json> call_all(const std::vector<Call>& calls);
  // The server's version from GET / as {major, minor}; cached.
  std::pair<int, int> version();
  const std::string& version_text();
  http::ClientStats stats() const { return m_http.stats(); }

 private:
  json unwrap(const Call& call, const http::Response& response, bool allow_missing, bool* missing) const;

  http::Client m_http;
  std::string m_base_url;
  std::string m_location;
  std::vector<std::string> m_secrets;
  std::optional<std::pair<int, int>> m_version;
  std::string m_version_text;
};

// "/collections/<escaped name>"
std::string collection_path(const std::string& collection);

}  // namespace vstash::backends::qdrant
