// SPDX-License-Identifier: MIT
// The one HTTP status policy (backends/http/statuspolicy.hpp): its table, the retry loop that
// follows it, and both REST stores' clients going through it.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "backends/http/httpclient.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/unit/httptestserver.hpp"
#ifdef VSTASH_HAVE_QDRANT
#include "backends/qdrant/qdrantclient.hpp"
#endif
#ifdef VSTASH_HAVE_PINECONE
#include "backends/pinecone/pineconeinternal.hpp"
#endif

namespace http = vstash::backends::http;
using vstash::testing::ScriptedServer;

namespace {

http::Response reply(long status, std::string body = "{}") {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

const std::set<long> k_retryable = {408, 429, 500, 502, 503, 504};

// The Qdrant-style error body the doubles send.
ScriptedServer::Reply failing(int status) {
  return {status, R"({"status":{"error":"injected"},"time":0.0,"result":null})", "", false};
}

}  // namespace

TEST_SUITE("http::status policy") {
  TEST_CASE("the table: 2xx success; 408, 429, 500, 502, 503, 504 retryable; everything else final") {
    for (long s = 100; s < 600; ++s) {
      CAPTURE(s);
      const auto expected = s >= 200 && s < 300    ? http::StatusClass::success
                            : k_retryable.count(s) ? http::StatusClass::retryable
                                                   : http::StatusClass::final;
      CHECK(http::classify(reply(s)) == expected);
    }
    // A Pinecone Starter plan's used-up monthly units: a 429 that does not pass by waiting.
    CHECK(http::classify(reply(429, "You've reached your write unit limit for the current month")) ==
          http::StatusClass::final);
    CHECK(http::classify(reply(429, R"({"error":{"code":"QUOTA_EXCEEDED"}})")) == http::StatusClass::final);
  }

  TEST_CASE("a final status becomes the store's error with its message") {
    CHECK_THROWS_AS(http::raise_for_status(reply(401), "qdrant x: GET /", "no", "api_key"), vstash::UsageError);
    CHECK_THROWS_WITH(http::raise_for_status(reply(403), "s: GET /", "forbidden", "api_key"),
                      "s: GET /: authentication failed (HTTP 403): check api_key: forbidden");
    CHECK_THROWS_AS(http::raise_for_status(reply(404), "s", "m", "api_key"), vstash::NotFoundError);
    CHECK_THROWS_AS(http::raise_for_status(reply(409), "s", "m", "api_key"), vstash::ConflictError);
    CHECK_THROWS_AS(http::raise_for_status(reply(422), "s", "m", "api_key"), vstash::UsageError);
    CHECK_THROWS_AS(http::raise_for_status(reply(503), "s", "m", "api_key"), vstash::RetryableError);
    CHECK_THROWS_WITH_AS(http::raise_for_status(reply(501), "s: GET /", "m", "api_key"), "s: GET /: HTTP 501: m",
                         vstash::Error);
    CHECK_THROWS_WITH(http::raise_for_status(reply(429, "monthly quota"), "s", "m", "api_key"),
                      "s: HTTP 429: m (quota used up: not retried; wait for it to renew or raise the plan)");
    try {
      http::raise_for_status(reply(505), "s", "m", "api_key");
    } catch (const vstash::Error& e) {
      CHECK(e.code() == vstash::ExitCode::fatal);
    }
  }

  TEST_CASE("the retry loop sends again exactly the statuses the table calls retryable") {
    ScriptedServer server;
    http::Client client(vstash::testing::fast_http_options());
    for (int status : {408, 429, 500, 501, 502, 503, 504, 505, 507, 400, 422}) {
      CAPTURE(status);
      const size_t before = server.requests().size();
      for (int i = 0; i < 4; ++i) {
        server.script(failing(status));
      }
      const bool retryable = k_retryable.count(status) > 0;
      try {
        auto r = client.send({"GET", server.url("/"), {}, "", {}});
        CHECK_FALSE(retryable);
        CHECK(r.status == status);
        CHECK(r.attempts == 1);
      } catch (const vstash::RetryableError& e) {
        CHECK(retryable);
        CHECK(std::string(e.what()) == "test:1: HTTP " + std::to_string(status) + " after 4 attempts: injected");
      }
      CHECK(server.requests().size() - before == (retryable ? 4u : 1u));
      // Unused scripted replies would answer the next status's requests.
      while (server.requests().size() - before < 4) {
        client.send({"GET", server.url("/"), {}, "", {}});
      }
    }
  }

#ifdef VSTASH_HAVE_QDRANT
  TEST_CASE("qdrant goes through the policy: a 501 is sent once and is a fatal error, a 503 is retried") {
    namespace qd = vstash::backends::qdrant;
    ScriptedServer server;
    qd::RestClient client(vstash::testing::fast_http_options(), server.url(""), {});
    const qd::Call count{"POST", "/collections/c/points/count", "{}"};
    server.script(failing(501));
    try {
      client.call(count);
      FAIL("expected an error");
    } catch (const vstash::RetryableError& e) {
      FAIL("a 501 is not retryable: " << e.what());
    } catch (const vstash::Error& e) {
      CHECK(std::string(e.what()) == "qdrant test:1: POST /collections/c/points/count: HTTP 501: injected");
      CHECK(e.code() == vstash::ExitCode::fatal);
    }
    CHECK(server.requests().size() == 1);

    server.script(failing(503));
    server.script({200, R"({"result":{"count":7},"status":"ok","time":0.0})", "", false});
    CHECK(client.call(count)["count"] == 7);
    CHECK(server.requests().size() == 3);
  }
#endif

#ifdef VSTASH_HAVE_PINECONE
  TEST_CASE("pinecone goes through the policy: a 501 is sent once and is a fatal error, a 503 is retried") {
    namespace pc = vstash::backends::pinecone;
    ScriptedServer server;
    const std::string base = server.url("");
    const vstash::Profile profile("p", "pinecone",
                                  {{"api_key", "k3y-secret"},
                                   {"index_name", "policy"},
                                   {"control_host", base},
                                   {"host", base},
                                   {"max_attempts", 4}},
                                  "test");
    pc::Connection connection(profile);
    server.script({200, R"({"name":"policy","dimension":4,"metric":"cosine","status":{"ready":true}})", "", false});
    connection.index();
    const size_t described = server.requests().size();
    server.script(failing(501));
    try {
      connection.post("/describe_index_stats", "{}");
      FAIL("expected an error");
    } catch (const vstash::RetryableError& e) {
      FAIL("a 501 is not retryable: " << e.what());
    } catch (const vstash::Error& e) {
      CHECK(std::string(e.what()).find("HTTP 501") != std::string::npos);
      CHECK(e.code() == vstash::ExitCode::fatal);
    }
    CHECK(server.requests().size() - described == 1);

    server.script(failing(503));
    server.script({200, R"({"namespaces":{},"dimension":4,"totalVectorCount":0})", "", false});
    CHECK(connection.post("/describe_index_stats", "{}").status == 200);
    CHECK(server.requests().size() - described == 3);
  }
#endif
}
