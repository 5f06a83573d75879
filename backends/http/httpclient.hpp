// SPDX-License-Identifier: MIT
// The HTTP layer shared by the REST backends (Qdrant, Pinecone): libcurl with connection
// reuse, concurrent requests, timeouts, and the one retry policy of both stores:
//   - retried: connection refused/reset, timeouts, empty or cut-short replies, and the
//     statuses the status policy classes retryable (statuspolicy.hpp: 408, 429, 500, 502,
//     503, 504; not a 429 that says a quota is used up);
//   - exponential backoff with full jitter (base * 2^attempt, capped); a Retry-After header
//     (whole seconds or an HTTP date) is honoured instead when present, up to retry_after_cap_s;
//   - a 2xx reply that a request's check cannot understand is sent once more, then it is an
//     Error naming the request ("...: POST /vectors/upsert: unexpected reply: ...");
//   - never retried: every other status, returned to the caller to report (raise_for_status).
// Every request carries User-Agent: vstash/VERSION. Files: httpclient.cpp (the retry loop),
// statuspolicy.cpp (statuses), curltransfer.cpp (one exchange on a curl handle),
// tlsoptions.cpp (TLS files and failures), httptext.cpp (messages), batchplan.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/http/statuspolicy.hpp"

namespace vstash {
class Profile;
}

namespace vstash::backends::http {

struct Response;

struct Request {
  std::string method = "GET";  // GET, POST, PUT, DELETE, PATCH
  std::string url;             // full URL, already percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Checks the shape of a 2xx reply and may keep what it parsed in response.parsed. Throws
  // BadReply (or a nlohmann::json exception) when the reply cannot be understood.
  std::function<void(Response&)> check;
};

struct Response {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  int attempts = 1;
  nlohmann::json parsed;  // filled by the request's check, if it has one
};

// What a request's check throws: the reply, though 2xx, is not what the API promises.
class BadReply : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ClientOptions {
  std::string server;  // "host:port" for messages
  long connect_timeout_ms = 10'000;
  long timeout_ms = 120'000;
  int parallel = 4;  // concurrent requests in send_all
  int max_attempts = 5;
  double backoff_base_s = 0.5;
  double backoff_cap_s = 30.0;
  double retry_after_cap_s = 60.0;
  // "qdrant", "pinecone": names the store in the messages of replies it cannot understand.
  std::string service;
  // Headers sent with every request (e.g. api keys; User-Agent is added). Their values are
  // never logged.
  std::vector<std::pair<std::string, std::string>> default_headers;
  // TLS files (PEM paths; empty: libcurl's default CA bundle, no client certificate). A
  // certificate that does not verify, or a file that cannot be used, is a UsageError naming
  // which (a configuration problem: exit 2), never retried.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
};

// Reads the profile's tls_ca / tls_cert / tls_key into options (tls_cert and tls_key go
// together: UsageError naming the profile otherwise).
void set_tls_files(ClientOptions& options, const Profile& profile);

struct ClientStats {
  int64_t requests = 0;  // attempts made, retries included
  int64_t retries = 0;
  int64_t bytes_sent = 0;
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends one request under the retry policy. Returns the final response whatever its status
  // when it is not retryable; throws RetryableError ("host:port: connection refused after 5
  // attempts", "... HTTP 503 after 5 attempts: <server message>") when attempts run out.
  Response send(const Request& request);
  // Sends all requests, up to options.parallel at once, each under the retry policy.
  // Responses are in request order. Throws the first RetryableError after all finished.
  std::vector<Response> send_all(const std::vector<Request>& requests);

  ClientStats stats() const;
  const ClientOptions& options() const { return m_options; }

 private:
  struct Impl;

  ClientOptions m_options;
  std::unique_ptr<Impl> m_impl;
};

// Percent-encodes one URL component (space is %20, never '+').
std::string url_escape(std::string_view s);

// Splits items of the given serialized sizes into consecutive groups so that no group has
// more than max_items items nor more than max_bytes bytes, counting overhead_bytes per
// request and separator_bytes between items. Returns [begin, end) pairs. Throws UsageError
// naming the item index if one item alone cannot fit.
std::vector<std::pair<size_t, size_t>> plan_batches(const std::vector<size_t>& item_bytes, size_t max_items,
                                                    size_t max_bytes, size_t overhead_bytes,
                                                    size_t separator_bytes = 1);

}  // namespace vstash::backends::http
