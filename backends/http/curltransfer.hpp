// SPDX-License-Identifier: MIT
// One HTTP exchange on a libcurl easy handle: the request's headers, body and timeouts set,
// the reply's status, headers and body collected; transport failures named and classed.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/http/httpclient.hpp"

namespace vstash::backends::http {

using CurlPtr = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;

// curl_global_init, once per process; Error when it fails.
void ensure_global_init();

// Idle easy handles, each keeping its own live connections for the next request.
class HandlePool {
 public:
  // An idle handle, or a new one (Error when libcurl cannot create one).
  CurlPtr acquire();
  void release(CurlPtr handle);

 private:
  std::mutex m_mutex;
  std::vector<CurlPtr> m_idle;
};

// What one exchange came to: a transport failure (code, libcurl's message) or a reply.
struct Attempt {
  CURLcode code = CURLE_OK;
  std::string curl_message;
  Response response;
};

// Sends the request once on the handle (reset first, keeping its connections) with the
// options' default headers, timeouts and TLS files. Never throws for a failed transfer: the
// failure is in the Attempt.
Attempt perform_once(CURL* curl, const ClientOptions& options, const Request& request);

// The transport failures worth another attempt: the server was down, slow, or dropped us.
bool is_retryable_curl(CURLcode code);
// A transport failure in a few words ("connection refused", "timed out", ...).
std::string describe_curl(CURLcode code);

}  // namespace vstash::backends::http
