// SPDX-License-Identifier: MIT
// The retry loop of the REST backends: each attempt judged by the status policy
// (statuspolicy.hpp) or, for a failed transfer, by its curl code; backoff between attempts;
// requests sent in parallel by a small pool of workers.
#include "backends/http/httpclient.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backends/http/curltransfer.hpp"
#include "backends/http/httptext.hpp"
#include "backends/http/tlsoptions.hpp"
#include "src/errors.hpp"

namespace vstash::backends::http {

namespace {

// One attempt judged: the response to hand back, or why another attempt is worth it.
struct Judgement {
  std::optional<Response> response;   // done: return it (2xx that passed its check, or final)
  std::string problem;                // another attempt: "HTTP 503: <message>", "connection refused", ...
  std::optional<double> retry_after;  // the server's Retry-After, seconds
  bool bad_reply = false;             // a 2xx that the request's check could not understand
};

// "qdrant host:port", or the server alone when the options name no service.
std::string service_name(const ClientOptions& o) { return o.service.empty() ? o.server : o.service + " " + o.server; }

// "POST /vectors/upsert": the path without scheme, host and query string.
std::string request_name(const Request& request) {
  std::string_view url = request.url;
  if (auto scheme = url.find("://"); scheme != std::string_view::npos) {
    url.remove_prefix(scheme + 3);
    auto slash = url.find('/');
    url.remove_prefix(slash == std::string_view::npos ? url.size() : slash);
  }
  url = url.substr(0, url.find('?'));
  return request.method + " " + std::string(url.empty() ? "/" : url);
}

// "" when the request's check accepts the reply, else what is wrong (one line, no secrets).
std::string check_reply(const Request& request, Response& response, const ClientOptions& o) {
  try {
    request.check(response);
    return "";
  } catch (const BadReply& e) {
    return server_message(e.what(), o.default_headers);
  } catch (const nlohmann::json::parse_error&) {
    std::string head = response.body.substr(0, 80);
    return fmt::format("not JSON ({} bytes: {})", response.body.size(), server_message(head, o.default_headers));
  } catch (const nlohmann::json::exception&) {
    return fmt::format("fields missing or of the wrong type ({})",
                       server_message(response.body.substr(0, 120), o.default_headers));
  }
}

// A failed transfer: retryable (its problem in a few words), or thrown at once: a TLS problem
// is configuration (UsageError), any other failure an Error.
Judgement judge_transport(const ClientOptions& o, const Attempt& attempt) {
  if (std::string tls = tls_problem(attempt.code, attempt.curl_message, o); !tls.empty()) {
    throw UsageError(
        fmt::format("{}: {} ({})", o.server, tls, server_message(attempt.curl_message, o.default_headers)));
  }
  if (!is_retryable_curl(attempt.code)) {
    throw Error(fmt::format("{}: {} ({})", o.server, describe_curl(attempt.code),
                            server_message(attempt.curl_message, o.default_headers)));
  }
  Judgement j;
  j.problem = describe_curl(attempt.code);
  return j;
}

// The policy's verdict on one attempt (statuspolicy.hpp classify).
Judgement judge(const ClientOptions& o, const Request& request, Attempt& attempt) {
  if (attempt.code != CURLE_OK) {
    return judge_transport(o, attempt);
  }
  Judgement j;
  switch (classify(attempt.response)) {
    case StatusClass::retryable:
      j.problem = fmt::format("HTTP {}", attempt.response.status);
      if (std::string message = server_message(attempt.response.body, o.default_headers); !message.empty()) {
        j.problem += ": " + message;
      }
      j.retry_after = retry_after_of(attempt.response);
      return j;
    case StatusClass::success:
      if (request.check) {
        j.problem = check_reply(request, attempt.response, o);
        if (!j.problem.empty()) {
          j.bad_reply = true;
          return j;
        }
      }
      break;
    case StatusClass::final:
      break;
  }
  j.response = std::move(attempt.response);
  return j;
}

// "host:port: HTTP 503 after 5 attempts: message": the count goes before the server's message.
RetryableError attempts_exhausted(const ClientOptions& o, const std::string& problem, int attempts) {
  const auto colon = problem.find(": ");
  const std::string head = colon == std::string::npos ? problem : problem.substr(0, colon);
  const std::string tail = colon == std::string::npos ? "" : problem.substr(colon);
  return RetryableError(
      fmt::format("{}: {} after {} attempt{}{}", o.server, head, attempts, attempts == 1 ? "" : "s", tail));
}

}  // namespace

struct Client::Impl {
  HandlePool pool;
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> retries{0};
  std::atomic<int64_t> bytes_sent{0};
  std::mutex rng_mutex;
  std::mt19937_64 rng{std::random_device{}()};

  // Seconds before attempt attempt_no + 1: the server's Retry-After (capped) when it sent one,
  // else full jitter, uniform in [0, min(cap, base * 2^(attempt_no-1))].
  double backoff_s(const ClientOptions& o, int attempt_no, std::optional<double> retry_after) {
    if (retry_after) {
      return std::min(*retry_after, o.retry_after_cap_s);
    }
    const double ceiling = std::min(o.backoff_cap_s, o.backoff_base_s * std::ldexp(1.0, std::min(attempt_no - 1, 30)));
    std::lock_guard lock(rng_mutex);
    return std::uniform_real_distribution<double>(0.0, std::max(0.0, ceiling))(rng);
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

Response Client::send(const Request& request) {
  // The handle goes back to the pool however this ends, keeping its connection alive.
  struct Lease {
    HandlePool& pool;
    CurlPtr handle;
    ~Lease() { pool.release(std::move(handle)); }
  } lease{m_impl->pool, m_impl->pool.acquire()};

  int bad_replies = 0;
  for (int attempt_no = 1;; ++attempt_no) {
    ++m_impl->requests;
    m_impl->bytes_sent += static_cast<int64_t>(request.body.size());
    Attempt attempt = perform_once(lease.handle.get(), m_options, request);
    Judgement j = judge(m_options, request, attempt);
    if (j.response) {
      j.response->attempts = attempt_no;
      return std::move(*j.response);
    }
    if (j.bad_reply) {
      // A reply that cannot be understood is sent once more at once (a proxy or server
      // hiccup), then reported naming the request: not retryable.
      if (++bad_replies > 1 || attempt_no >= m_options.max_attempts) {
        throw Error(
            fmt::format("{}: {}: unexpected reply: {}", service_name(m_options), request_name(request), j.problem));
      }
      ++m_impl->retries;
      continue;
    }
    if (attempt_no >= m_options.max_attempts) {
      throw attempts_exhausted(m_options, j.problem, attempt_no);
    }
    ++m_impl->retries;
    const double delay_s = m_impl->backoff_s(m_options, attempt_no, j.retry_after);
    std::this_thread::sleep_for(std::chrono::duration<double>(delay_s));
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

}  // namespace vstash::backends::http
