// SPDX-License-Identifier: MIT
// The one HTTP status policy of the REST stores (Qdrant, Pinecone): which replies are a
// success, which are worth another attempt, which are final, and the vstash error a final
// failure becomes. The retry loop (Client::send) asks classify; the stores only name the
// request and pass the server's message to raise_for_status.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vstash::backends::http {

struct Response;

enum class StatusClass {
  success,    // 2xx: the request's check, if any, looks at the body
  retryable,  // transient: sent again under the backoff, RetryableError (exit 3) once attempts run out
  final,      // returned to the store at once, which maps it with raise_for_status
};

// The class of a completed reply. Retryable: 408, 429 (unless a used-up quota), 500, 502, 503,
// 504; every other non-2xx is final (501 and 505 never change by asking again). The method
// does not enter: both APIs use POST for reads, and every write vstash sends is idempotent.
StatusClass classify(const Response& response);
// A 429 whose message says a quota (e.g. a month's write units) is used up: not transient.
bool is_quota_exhausted(const Response& response);
// Throws the vstash error for a final non-2xx reply, "<context>: HTTP <status>: <message>":
// 401/403 UsageError naming the profile key auth_key (an auth failure is a configuration
// problem), 404 NotFoundError, 409 ConflictError, a used-up quota Error (not retried), a
// retryable status RetryableError, any other 4xx UsageError, anything else Error.
[[noreturn]] void raise_for_status(const Response& response, const std::string& context, const std::string& message,
                                   std::string_view auth_key);
// Seconds to wait from a Retry-After value: whole seconds or an HTTP date (RFC 7231
// IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT") relative to now_unix; nullopt when
// malformed. A date in the past gives 0.
std::optional<double> parse_retry_after(std::string_view value, double now_unix);
// The reply's Retry-After header as seconds from now; nullopt when absent or malformed.
std::optional<double> retry_after_of(const Response& response);

}  // namespace vstash::backends::http
