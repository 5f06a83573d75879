// SPDX-License-Identifier: MIT
// libcurl transport for the REST backends: pooled easy handles, retries, batching plans.
#include "backends/http/httpclient.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "src/errors.hpp"
#include "src/profile.hpp"

namespace vstash::backends::http {

namespace {

using CurlPtr = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using CurlMultiPtr = std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)>;
using CurlSlistPtr = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;
using CurlStringPtr = std::unique_ptr<char, decltype(&curl_free)>;

constexpr size_t k_max_message_chars = 300;

void ensure_global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw Error("libcurl: global initialisation failed");
    }
  });
}

// The transport failures worth another attempt: the server was down, slow, or dropped us.
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

// A certificate or TLS file problem, as "tls: <which>" (empty when code is something else):
// configuration, reported as such and never retried. A server that refuses our client
// certificate (or wants one) says so with a TLS alert, which libcurl reports as a handshake or
// receive error (TLS 1.3 sends it after the handshake): told apart by the alert's text.
std::string tls_problem(CURLcode code, const std::string& message, const ClientOptions& o) {
  if ((code == CURLE_SSL_CONNECT_ERROR || code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR) &&
      (message.find("alert certificate required") != std::string::npos ||
       message.find("alert bad certificate") != std::string::npos ||
       message.find("alert unknown ca") != std::string::npos)) {
    return o.tls_cert.empty()
               ? "tls: the server wants a client certificate (set tls_cert and tls_key)"
               : fmt::format("tls: the server refused the client certificate tls_cert \"{}\"", o.tls_cert);
  }
  const std::string ca = o.tls_ca.empty() ? "the system CA bundle" : fmt::format("tls_ca \"{}\"", o.tls_ca);
  switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:  // also CURLE_SSL_CACERT: wrong host name or wrong CA
      if (message.find("host name") != std::string::npos || message.find("subject name") != std::string::npos) {
        return "tls: the server's certificate does not name the host";
      }
      return fmt::format("tls: the server's certificate does not verify against {}", ca);
    case CURLE_SSL_CACERT_BADFILE:
      return fmt::format("tls: cannot use {}", ca);
    case CURLE_SSL_CERTPROBLEM:
      return fmt::format("tls: cannot use the client certificate tls_cert \"{}\" with tls_key \"{}\"", o.tls_cert,
                         o.tls_key);
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return "tls: the server's certificate was refused";
    default:
      return "";
  }
}

std::string lower(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) {
    ++b;
  }
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) {
    --e;
  }
  return std::string(s.substr(b, e - b));
}

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

// The leading digits of s as a number (at most max_digits of them); advances s.
std::optional<int> take_number(std::string_view& s, size_t min_digits, size_t max_digits) {
  size_t n = 0;
  int value = 0;
  while (n < s.size() && n < max_digits && std::isdigit(static_cast<unsigned char>(s[n]))) {
    value = value * 10 + (s[n] - '0');
    ++n;
  }
  if (n < min_digits) {
    return std::nullopt;
  }
  s.remove_prefix(n);
  return value;
}

bool take(std::string_view& s, std::string_view literal) {
  if (s.substr(0, literal.size()) != literal) {
    return false;
  }
  s.remove_prefix(literal.size());
  return true;
}

// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as seconds since the epoch.
std::optional<double> parse_imf_fixdate(std::string_view s) {
  static constexpr std::string_view k_days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr std::string_view k_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 29 || std::find(std::begin(k_days), std::end(k_days), s.substr(0, 3)) == std::end(k_days)) {
    return std::nullopt;
  }
  s.remove_prefix(3);
  if (!take(s, ", ")) {
    return std::nullopt;
  }
  const auto day = take_number(s, 2, 2);
  if (!day || !take(s, " ")) {
    return std::nullopt;
  }
  const auto month = std::find(std::begin(k_months), std::end(k_months), s.substr(0, 3)) - std::begin(k_months);
  if (month >= 12) {
    return std::nullopt;
  }
  s.remove_prefix(3);
  std::optional<int> year, hour, minute, second;
  if (!take(s, " ") || !(year = take_number(s, 4, 4)) || !take(s, " ") || !(hour = take_number(s, 2, 2)) ||
      !take(s, ":") || !(minute = take_number(s, 2, 2)) || !take(s, ":") || !(second = take_number(s, 2, 2)) ||
      s != " GMT" || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  // Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
  const int y = *year - (month < 2 ? 1 : 0);
  const int era = y / 400;
  const int yoe = y - era * 400;
  const int m = static_cast<int>(month) + 1;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + *day - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const double days = static_cast<double>(era) * 146097 + doe - 719468;
  return days * 86400 + *hour * 3600 + *minute * 60 + *second;
}

std::optional<double> retry_after_of(const Response& response) {
  auto it = response.headers.find("retry-after");
  if (it == response.headers.end()) {
    return std::nullopt;
  }
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return parse_retry_after(it->second, now);
}

struct Attempt {
  CURLcode code = CURLE_OK;
  std::string curl_message;
  Response response;
};

}  // namespace

// The server's own words from an error body, as one line: JSON {"status":{"error"}},
// {"error":{"message"}}, {"message"} or the raw text, with secrets scrubbed.
static std::string server_message(const std::string& body,
                                  const std::vector<std::pair<std::string, std::string>>& secrets) {
  std::string text;
  try {
    auto j = nlohmann::json::parse(body);
    if (j.is_object()) {
      if (j.contains("status") && j["status"].is_object() && j["status"].contains("error")) {
        text = j["status"]["error"].is_string() ? j["status"]["error"].get<std::string>() : j["status"]["error"].dump();
      } else if (j.contains("error") && j["error"].is_object() && j["error"].contains("message")) {
        text = j["error"]["message"].dump();
        if (j["error"]["message"].is_string()) {
          text = j["error"]["message"].get<std::string>();
        }
      } else if (j.contains("message") && j["message"].is_string()) {
        text = j["message"].get<std::string>();
      } else if (j.contains("error") && j["error"].is_string()) {
        text = j["error"].get<std::string>();
      }
    }
  } catch (const nlohmann::json::exception&) {
  }
  if (text.empty()) {
    text = body;
  }
  for (auto& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      c = ' ';
    }
  }
  text = trim(text);
  for (const auto& [name, value] : secrets) {
    if (value.size() < 4) {
      continue;
    }
    for (size_t pos = text.find(value); pos != std::string::npos; pos = text.find(value, pos)) {
      text.replace(pos, value.size(), "***");
    }
  }
  if (text.size() > k_max_message_chars) {
    text = text.substr(0, k_max_message_chars) + "...";
  }
  return text;
}

struct Client::Impl {
  std::mutex pool_mutex;
  std::vector<CurlPtr> pool;  // idle easy handles; each keeps its own live connections
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> retries{0};
  std::atomic<int64_t> bytes_sent{0};
  std::mutex rng_mutex;
  std::mt19937_64 rng{std::random_device{}()};

  CurlPtr acquire() {
    {
      std::lock_guard lock(pool_mutex);
      if (!pool.empty()) {
        CurlPtr handle = std::move(pool.back());
        pool.pop_back();
        return handle;
      }
    }
    CurlPtr handle(curl_easy_init(), &curl_easy_cleanup);
    if (!handle) {
      throw Error("libcurl: cannot create a handle");
    }
    return handle;
  }

  void release(CurlPtr handle) {
    std::lock_guard lock(pool_mutex);
    pool.push_back(std::move(handle));
  }

  double uniform(double hi) {
    std::lock_guard lock(rng_mutex);
    return std::uniform_real_distribution<double>(0.0, hi)(rng);
  }
};

Client::Client(ClientOptions options) : m_options(std::move(options)), m_impl(std::make_unique<Impl>()) {
  ensure_global_init();
  const bool has_agent = std::any_of(m_options.default_headers.begin(), m_options.default_headers.end(),
                                     [](const auto& h) { return lower(h.first) == "user-agent"; });
  if (!has_agent) {
    m_options.default_headers.emplace_back("User-Agent", "vstash/" VSTASH_VERSION);
  }
  m_options.max_attempts = std::max(1, m_options.max_attempts);
  m_options.parallel = std::max(1, m_options.parallel);
}

Client::~Client() = default;

namespace {

Attempt perform_once(CURL* curl, const ClientOptions& options, const Request& request) {
  Attempt attempt;
  curl_easy_reset(curl);  // keeps the live connections of this handle
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_slist* raw = nullptr;
  CurlSlistPtr headers(nullptr, &curl_slist_free_all);
  auto add = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(raw, line.c_str());
    if (!next) {
      throw Error("libcurl: out of memory building headers");
    }
    raw = next;
    headers.release();
    headers.reset(raw);
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
  // libcurl would otherwise wait for 100-continue before sending big bodies.
  add("Expect:");

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, options.connect_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, options.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  if (!options.tls_ca.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, options.tls_ca.c_str());
  }
  if (!options.tls_cert.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, options.tls_cert.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY, options.tls_key.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &attempt.response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &attempt.response.headers);
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

}  // namespace

Response Client::send(const Request& request) {
  CurlPtr curl = m_impl->acquire();
  struct Returner {
    Impl& impl;
    CurlPtr& handle;
    ~Returner() { impl.release(std::move(handle)); }
  } returner{*m_impl, curl};

  std::string last_problem;
  int bad_replies = 0;
  for (int attempt_no = 1;; ++attempt_no) {
    ++m_impl->requests;
    m_impl->bytes_sent += static_cast<int64_t>(request.body.size());
    Attempt attempt = perform_once(curl.get(), m_options, request);

    std::optional<double> retry_after;
    if (attempt.code == CURLE_OK) {
      attempt.response.attempts = attempt_no;
      if (!is_retryable_status(attempt.response)) {
        const long status = attempt.response.status;
        if (!request.check || status < 200 || status >= 300) {
          return std::move(attempt.response);
        }
        std::string problem = check_reply(request, attempt.response);
        if (problem.empty()) {
          return std::move(attempt.response);
        }
        // A reply that cannot be understood is sent once more (a proxy or server hiccup),
        // then reported naming the request.
        if (++bad_replies > 1 || attempt_no >= m_options.max_attempts) {
          throw Error(fmt::format("{}: {}: unexpected reply: {}", service_name(), request_name(request), problem));
        }
        ++m_impl->retries;
        continue;
      }
      std::string message = server_message(attempt.response.body, m_options.default_headers);
      last_problem = fmt::format("HTTP {}", attempt.response.status);
      if (!message.empty()) {
        last_problem += ": " + message;
      }
      retry_after = retry_after_of(attempt.response);
    } else if (std::string tls = tls_problem(attempt.code, attempt.curl_message, m_options); !tls.empty()) {
      throw UsageError(fmt::format("{}: {} ({})", m_options.server, tls,
                                   server_message(attempt.curl_message, m_options.default_headers)));
    } else if (is_retryable_curl(attempt.code)) {
      last_problem = describe_curl(attempt.code);
    } else {
      throw Error(fmt::format("{}: {} ({})", m_options.server, describe_curl(attempt.code),
                              server_message(attempt.curl_message, m_options.default_headers)));
    }

    if (attempt_no >= m_options.max_attempts) {
      // Keep "HTTP 503 after 5 attempts: message" readable: the count goes before the message.
      auto colon = last_problem.find(": ");
      std::string head = colon == std::string::npos ? last_problem : last_problem.substr(0, colon);
      std::string tail = colon == std::string::npos ? "" : last_problem.substr(colon);
      throw RetryableError(fmt::format("{}: {} after {} attempt{}{}", m_options.server, head, attempt_no,
                                       attempt_no == 1 ? "" : "s", tail));
    }
    ++m_impl->retries;
    double delay_s = 0;
    if (retry_after) {
      delay_s = std::min(*retry_after, m_options.retry_after_cap_s);
    } else {
      // Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].
      double ceiling =
          std::min(m_options.backoff_cap_s, m_options.backoff_base_s * std::ldexp(1.0, std::min(attempt_no - 1, 30)));
      delay_s = m_impl->uniform(std::max(0.0, ceiling));
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(delay_s));
  }
}

std::string Client::service_name() const {
  return m_options.service.empty() ? m_options.server : m_options.service + " " + m_options.server;
}

std::string Client::request_name(const Request& request) {
  // "POST /vectors/upsert": the path without scheme, host and query string.
  std::string_view url = request.url;
  if (auto scheme = url.find("://"); scheme != std::string_view::npos) {
    url.remove_prefix(scheme + 3);
    auto slash = url.find('/');
    url.remove_prefix(slash == std::string_view::npos ? url.size() : slash);
  }
  url = url.substr(0, url.find('?'));
  return request.method + " " + std::string(url.empty() ? "/" : url);
}

std::string Client::check_reply(const Request& request, Response& response) const {
  try {
    request.check(response);
    return "";
  } catch (const BadReply& e) {
    return server_message(e.what(), m_options.default_headers);
  } catch (const nlohmann::json::parse_error&) {
    std::string head = response.body.substr(0, 80);
    return fmt::format("not JSON ({} bytes: {})", response.body.size(),
                       server_message(head, m_options.default_headers));
  } catch (const nlohmann::json::exception&) {
    return fmt::format("fields missing or of the wrong type ({})",
                       server_message(response.body.substr(0, 120), m_options.default_headers));
  }
}

std::vector<Response> Client::send_all(const std::vector<Request>& requests) {
  std::vector<Response> responses(requests.size());
  if (requests.empty()) {
    return responses;
  }
  std::vector<std::exception_ptr> errors(requests.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < requests.size(); i = next++) {
      try {
        responses[i] = send(requests[i]);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  // A small fixed pool of workers, each with its own pooled handle (and connection).
  size_t workers = std::min(requests.size(), static_cast<size_t>(m_options.parallel));
  if (workers <= 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    threads.reserve(workers - 1);
    for (size_t w = 1; w < workers; ++w) {
      threads.emplace_back(worker);
    }
    worker();
    for (auto& t : threads) {
      t.join();
    }
  }
  // Retryable failures first, as documented; any other error after them.
  for (const auto& error : errors) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const RetryableError&) {
        throw;
      } catch (...) {
      }
    }
  }
  for (const auto& error : errors) {
    if (error) {
      std::rethrow_exception(error);
    }
  }
  return responses;
}

ClientStats Client::stats() const {
  ClientStats s;
  s.requests = m_impl->requests.load();
  s.retries = m_impl->retries.load();
  s.bytes_sent = m_impl->bytes_sent.load();
  return s;
}

bool is_quota_exhausted(const Response& r) {
  if (r.status != 429) {
    return false;
  }
  const std::string body = lower(r.body);
  return body.find("month") != std::string::npos || body.find("quota") != std::string::npos;
}

bool is_retryable_status(const Response& r) {
  switch (r.status) {
    case 429:
      return !is_quota_exhausted(r);
    case 408:
    case 500:
    case 502:
    case 503:
    case 504:
      return true;
    default:
      return false;
  }
}

void raise_for_status(const Response& r, const std::string& context, const std::string& message,
                      std::string_view auth_key) {
  const std::string text = fmt::format("{}: HTTP {}: {}", context, r.status, message);
  if (r.status == 401 || r.status == 403) {
    throw UsageError(
        fmt::format("{}: authentication failed (HTTP {}): check {}: {}", context, r.status, auth_key, message));
  }
  if (r.status == 404) {
    throw NotFoundError(text);
  }
  if (r.status == 409) {
    throw ConflictError(text);
  }
  if (is_quota_exhausted(r)) {
    throw Error(fmt::format("{} (quota used up: not retried; wait for it to renew or raise the plan)", text));
  }
  if (is_retryable_status(r)) {
    throw RetryableError(text);
  }
  if (r.status >= 400 && r.status < 500) {
    throw UsageError(text);
  }
  throw Error(text);
}

std::optional<double> parse_retry_after(std::string_view value, double now_unix) {
  const std::string v = trim(value);
  if (v.empty()) {
    return std::nullopt;
  }
  if (std::all_of(v.begin(), v.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return v.size() > 9 ? std::nullopt : std::optional<double>(std::stod(v));
  }
  const auto at = parse_imf_fixdate(v);
  if (!at) {
    return std::nullopt;
  }
  return std::max(0.0, *at - now_unix);
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

std::vector<std::pair<size_t, size_t>> plan_batches(const std::vector<size_t>& item_bytes, size_t max_items,
                                                    size_t max_bytes, size_t overhead_bytes, size_t separator_bytes) {
  // A zero max_items means "no count limit".
  if (max_items == 0) {
    max_items = item_bytes.size() + 1;
  }
  std::vector<std::pair<size_t, size_t>> plan;
  size_t begin = 0;
  size_t bytes = overhead_bytes;
  for (size_t i = 0; i < item_bytes.size(); ++i) {
    if (overhead_bytes + item_bytes[i] > max_bytes) {
      throw UsageError(fmt::format("item {}: {} bytes serialized, more than the {} byte request limit", i,
                                   item_bytes[i], max_bytes - std::min(max_bytes, overhead_bytes)));
    }
    size_t count = i - begin;
    size_t added = item_bytes[i] + (count > 0 ? separator_bytes : 0);
    if (count > 0 && (count >= max_items || bytes + added > max_bytes)) {
      plan.emplace_back(begin, i);
      begin = i;
      bytes = overhead_bytes;
      added = item_bytes[i];
    }
    bytes += added;
  }
  if (begin < item_bytes.size()) {
    plan.emplace_back(begin, item_bytes.size());
  }
  return plan;
}

void set_tls_files(ClientOptions& options, const Profile& profile) {
  options.tls_ca = profile.get_string("tls_ca", "");
  options.tls_cert = profile.get_string("tls_cert", "");
  options.tls_key = profile.get_string("tls_key", "");
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    throw UsageError(fmt::format("profile \"{}\" ({}): tls_cert and tls_key go together: set both or neither",
                                 profile.name(), profile.source()));
  }
}

}  // namespace vstash::backends::http
