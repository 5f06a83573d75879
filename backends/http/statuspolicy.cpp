// SPDX-License-Identifier: MIT
#include "backends/http/statuspolicy.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>

#include <fmt/format.h>

#include "backends/http/httpclient.hpp"
#include "backends/http/httptext.hpp"
#include "src/errors.hpp"

namespace vstash::backends::http {

namespace {

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

}  // namespace

// Why these statuses (docs/backends.md, "Qdrant" and "Pinecone"; the strict doubles in
// tests/doubles/ answer with the same statuses as the services):
//   408  Qdrant's server-side operation timeout ("Timeout: ..."): the same request may finish
//        next time; Pinecone's Python SDK retries it too.
//   429  both stores' rate limits (Qdrant strict mode sends Retry-After in whole seconds);
//        but a Pinecone Starter plan's used-up monthly units are a 429 that stays until the
//        month renews: final (tests/doubles/pinecone_double.py, "quota").
//   500  Qdrant's "Service internal error" and Pinecone's INTERNAL: both Pinecone SDKs retry
//        it; a cause that persists costs max_attempts and ends as exit 3, not a wrong answer.
//   502, 504  a proxy or load balancer in front of the store (Qdrant Cloud, Pinecone's hosts)
//        lost or timed out the upstream: transient by definition.
//   503  Qdrant's "shard temporarily unavailable", Pinecone's UNAVAILABLE and an index not
//        ready yet.
//   501, 505 and every other 5xx (Qdrant's 507 "Insufficient storage") do not change by
//   asking again: final (Error, exit 1). Other 4xx are the request's fault: final.
// Retrying is safe because every request vstash sends is idempotent: upserts and deletes by
// id, reads (POST on both APIs), and creates that take 409 as "exists"
// (backends/qdrant/qdrantclient.cpp create_collection, backends/pinecone/pineconecontrol.cpp).
StatusClass classify(const Response& r) {
  if (r.status >= 200 && r.status < 300) {
    return StatusClass::success;
  }
  switch (r.status) {
    case 429:
      return is_quota_exhausted(r) ? StatusClass::final : StatusClass::retryable;
    case 408:
    case 500:
    case 502:
    case 503:
    case 504:
      return StatusClass::retryable;
    default:
      return StatusClass::final;
  }
}

bool is_quota_exhausted(const Response& r) {
  if (r.status != 429) {
    return false;
  }
  const std::string body = lower(r.body);
  return body.find("month") != std::string::npos || body.find("quota") != std::string::npos;
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
  if (classify(r) == StatusClass::retryable) {
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

std::optional<double> retry_after_of(const Response& response) {
  auto it = response.headers.find("retry-after");
  if (it == response.headers.end()) {
    return std::nullopt;
  }
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return parse_retry_after(it->second, now);
}

}  // namespace vstash::backends::http
