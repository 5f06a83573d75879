// SPDX-License-Identifier: MIT
#include "backends/http/curltransfer.hpp"

#include <map>
#include <string_view>

#include "backends/http/httptext.hpp"
#include "backends/http/tlsoptions.hpp"
#include "src/errors.hpp"

namespace vstash::backends::http {

namespace {

using CurlSlistPtr = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;
using CurlStringPtr = std::unique_ptr<char, decltype(&curl_free)>;

size_t on_body(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string_view line(data, size * count);
  // A new status line (after 100-continue or a redirect) starts a fresh header block.
  if (line.substr(0, 5) == "HTTP/") {
    headers->clear();
    return size * count;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    (*headers)[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  }
  return size * count;
}

// The header list of a request: the options' defaults, the request's own, a JSON content type
// for a body without one, and an empty Expect (libcurl would otherwise wait for 100-continue
// before sending big bodies).
CurlSlistPtr header_list(const ClientOptions& options, const Request& request) {
  CurlSlistPtr headers(nullptr, &curl_slist_free_all);
  auto add = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (!next) {
      throw Error("libcurl: out of memory building headers");
    }
    headers.release();
    headers.reset(next);
  };
  bool has_content_type = false;
  for (const auto* list : {&options.default_headers, &request.headers}) {
    for (const auto& [name, value] : *list) {
      if (lower(name) == "content-type") {
        has_content_type = true;
      }
      add(name + ": " + value);
    }
  }
  if (!request.body.empty() && !has_content_type) {
    add("Content-Type: application/json");
  }
  add("Expect:");
  return headers;
}

void set_method(CURL* curl, const Request& request) {
  if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" || request.method == "PATCH") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.c_str());
    }
  }
}

}  // namespace

void ensure_global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw Error("libcurl: global initialisation failed");
    }
  });
}

CurlPtr HandlePool::acquire() {
  {
    std::lock_guard lock(m_mutex);
    if (!m_idle.empty()) {
      CurlPtr handle = std::move(m_idle.back());
      m_idle.pop_back();
      return handle;
    }
  }
  CurlPtr handle(curl_easy_init(), &curl_easy_cleanup);
  if (!handle) {
    throw Error("libcurl: cannot create a handle");
  }
  return handle;
}

void HandlePool::release(CurlPtr handle) {
  std::lock_guard lock(m_mutex);
  m_idle.push_back(std::move(handle));
}

Attempt perform_once(CURL* curl, const ClientOptions& options, const Request& request) {
  Attempt attempt;
  curl_easy_reset(curl);  // keeps the live connections of this handle
  char errbuf[CURL_ERROR_SIZE] = {0};
  const CurlSlistPtr headers = header_list(options, request);

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, options.connect_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, options.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  apply_tls_files(curl, options);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &attempt.response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &attempt.response.headers);
  set_method(curl, request);

  attempt.code = curl_easy_perform(curl);
  if (attempt.code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &attempt.response.status);
  } else {
    attempt.curl_message = errbuf[0] ? trim(errbuf) : std::string(curl_easy_strerror(attempt.code));
  }
  // The handle must not keep pointers into this frame.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  return attempt;
}

bool is_retryable_curl(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:  // the server closed before the whole body arrived
    // A name that does not resolve now may resolve later (a resolver outage, a service whose
    // DNS record is not up yet): retryable like a refused connection, exit 3 when it stays.
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return true;
    default:
      return false;
  }
}

std::string describe_curl(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
      return "connection refused";
    case CURLE_OPERATION_TIMEDOUT:
      return "timed out";
    case CURLE_SEND_ERROR:
      return "connection reset while sending";
    case CURLE_RECV_ERROR:
      return "connection reset while receiving";
    case CURLE_GOT_NOTHING:
      return "empty reply from server";
    case CURLE_PARTIAL_FILE:
      return "reply cut short";
    case CURLE_COULDNT_RESOLVE_HOST:
      return "could not resolve host";
    default:
      return curl_easy_strerror(code);
  }
}

std::string url_escape(std::string_view s) {
  ensure_global_init();
  // curl_easy_escape accepts a null handle since 7.82 and never writes '+' for a space.
  CurlStringPtr escaped(curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size())), &curl_free);
  if (!escaped) {
    throw Error("libcurl: url escape failed");
  }
  return std::string(escaped.get());
}

}  // namespace vstash::backends::http
