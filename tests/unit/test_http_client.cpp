// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "backends/http/httpclient.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/unit/httptestserver.hpp"

namespace http = vstash::backends::http;

namespace {

using vstash::testing::ScriptedServer;

http::ClientOptions fast_options() { return vstash::testing::fast_http_options(); }

}  // namespace

TEST_SUITE("http::Client") {
  TEST_CASE("a 503 then success is retried and counted") {
    ScriptedServer server;
    server.script({503, R"({"status":{"error":"busy"}})", "", false});
    server.script({503, "{}", "", false});
    server.script({200, R"({"result":true})", "", false});
    http::Client client(fast_options());
    auto r = client.send({"POST", server.url("/x"), {}, "{\"a\":1}", {}});
    CHECK(r.status == 200);
    CHECK(r.body == R"({"result":true})");
    CHECK(r.attempts == 3);
    CHECK(client.stats().requests == 3);
    CHECK(client.stats().retries == 2);
    CHECK(client.stats().bytes_sent == 21);
    auto reqs = server.requests();
    REQUIRE(reqs.size() == 3);
    CHECK(reqs[0].find("Expect") == std::string::npos);
    CHECK(reqs[0].find("Content-Type: application/json") != std::string::npos);
    // One handle, one kept-alive connection for all three attempts.
    CHECK(server.connections() == 1);
  }
  TEST_CASE("other 4xx statuses are returned at once without retry") {
    ScriptedServer server;
    server.script({404, R"({"status":{"error":"Not found"}})", "", false});
    http::Client client(fast_options());
    auto r = client.send({"GET", server.url("/missing"), {}, "", {}});
    CHECK(r.status == 404);
    CHECK(r.attempts == 1);
    CHECK(server.requests().size() == 1);
  }
  TEST_CASE("running out of attempts throws a retryable error with the server message") {
    ScriptedServer server;
    for (int i = 0; i < 4; ++i) {
      server.script({503, R"({"status":{"error":"shard unavailable"}})", "", false});
    }
    http::Client client(fast_options());
    try {
      client.send({"GET", server.url("/"), {}, "", {}});
      FAIL("expected RetryableError");
    } catch (const vstash::RetryableError& e) {
      CHECK(std::string(e.what()) == "test:1: HTTP 503 after 4 attempts: shard unavailable");
    }
  }
  TEST_CASE("retry-after is honoured in whole seconds") {
    ScriptedServer server;
    server.script({429, "{}", "Retry-After: 1\r\n", false});
    http::Client client(fast_options());
    auto start = std::chrono::steady_clock::now();
    auto r = client.send({"GET", server.url("/"), {}, "", {}});
    auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(r.status == 200);
    CHECK(r.attempts == 2);
    CHECK(elapsed >= std::chrono::milliseconds(950));
  }
  TEST_CASE("a dropped connection is retried on a new connection") {
    ScriptedServer server;
    server.script({0, "", "", true});
    http::Client client(fast_options());
    auto r = client.send({"PUT", server.url("/p"), {}, "{}", {}});
    CHECK(r.status == 200);
    CHECK(r.attempts == 2);
    CHECK(server.connections() == 2);
  }
  TEST_CASE("connection refused becomes a retryable error naming the server") {
    auto options = fast_options();
    options.max_attempts = 2;
    http::Client client(options);
    std::string url;
    {
      ScriptedServer server;  // take a free port, then close it
      url = server.url("/");
    }
    try {
      client.send({"GET", url, {}, "", {}});
      FAIL("expected RetryableError");
    } catch (const vstash::RetryableError& e) {
      CHECK(std::string(e.what()) == "test:1: connection refused after 2 attempts");
    }
  }
  TEST_CASE("send_all keeps request order and secrets never reach messages") {
    ScriptedServer server;
    auto options = fast_options();
    options.parallel = 3;
    options.default_headers = {{"api-key", "s3cr3t-key"}};
    http::Client client(options);
    std::vector<http::Request> requests;
    for (int i = 0; i < 20; ++i) {
      requests.push_back({"POST", server.url("/n/" + std::to_string(i)), {}, std::to_string(i), {}});
    }
    auto responses = client.send_all(requests);
    REQUIRE(responses.size() == 20);
    for (const auto& r : responses) {
      CHECK(r.status == 200);
    }
    auto reqs = server.requests();
    CHECK(reqs.size() == 20);
    CHECK(reqs[0].find("api-key: s3cr3t-key") != std::string::npos);
    CHECK(server.connections() <= 3);

    for (int i = 0; i < 4; ++i) {
      server.script({500, "echo s3cr3t-key", "", false});
    }
    try {
      client.send({"GET", server.url("/"), {}, "", {}});
      FAIL("expected RetryableError");
    } catch (const vstash::RetryableError& e) {
      CHECK(std::string(e.what()).find("s3cr3t") == std::string::npos);
      CHECK(std::string(e.what()).find("echo ***") != std::string::npos);
    }
  }

  TEST_CASE("a reply cut short (body shorter than Content-Length) is retried") {
    ScriptedServer server;
    server.script({200, "{\"result\":", "", false, true});
    http::Client client(fast_options());
    auto r = client.send({"GET", server.url("/"), {}, "", {}});
    CHECK(r.status == 200);
    CHECK(r.body == "{}");
    CHECK(r.attempts == 2);

    for (int i = 0; i < 4; ++i) {
      server.script({200, "{\"a\":", "", false, true});
    }
    try {
      client.send({"GET", server.url("/"), {}, "", {}});
      FAIL("expected RetryableError");
    } catch (const vstash::RetryableError& e) {
      CHECK(std::string(e.what()) == "test:1: reply cut short after 4 attempts");
    }
  }
  TEST_CASE("retry-after as an HTTP date is honoured like the seconds form") {
    CHECK(http::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0 - 5) == doctest::Approx(5.0));
    CHECK(http::parse_retry_after("Thu, 29 Feb 2024 23:59:60 GMT", 1709251200.0) == doctest::Approx(0.0));
    CHECK(http::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0 + 60) == doctest::Approx(0.0));
    CHECK(http::parse_retry_after(" 7 ", 0) == doctest::Approx(7.0));
    CHECK_FALSE(http::parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", 0).has_value());
    CHECK_FALSE(http::parse_retry_after("Sun, 06 Nov 1994 08:49:37 UTC", 0).has_value());
    CHECK_FALSE(http::parse_retry_after("soon", 0).has_value());

    // A date 2 s ahead (whole seconds: at least 1 s from now) delays the next attempt.
    char date[64];
    const std::time_t at = std::time(nullptr) + 2;
    std::tm tm{};
    gmtime_r(&at, &tm);
    std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    ScriptedServer server;
    server.script({503, "{}", std::string("Retry-After: ") + date + "\r\n", false});
    http::Client client(fast_options());
    const auto start = std::chrono::steady_clock::now();
    auto r = client.send({"GET", server.url("/"), {}, "", {}});
    CHECK(r.status == 200);
    CHECK(r.attempts == 2);
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(900));
  }
  TEST_CASE("a reply its check cannot understand is sent once more, then an error naming the request") {
    ScriptedServer server;
    auto options = fast_options();
    options.service = "pinecone";
    http::Client client(options);
    http::Request request{"POST", server.url("/vectors/upsert?x=1"), {}, "{}", {}};
    request.check = [](http::Response& r) {
      r.parsed = nlohmann::json::parse(r.body);
      if (r.parsed.value("upsertedCount", 0) != 3) {
        throw http::BadReply("upsertedCount is not 3");
      }
    };
    server.script({200, "{\"upsertedCount\":2}", "", false});
    server.script({200, "{\"upsertedCount\":3}", "", false});
    auto r = client.send(request);
    CHECK(r.attempts == 2);
    CHECK(r.parsed["upsertedCount"] == 3);

    server.script({200, "{\"upsertedCount\":2}", "", false});
    server.script({200, "not json at all", "", false});
    try {
      client.send(request);
      FAIL("expected Error");
    } catch (const vstash::RetryableError&) {
      FAIL("a reply that cannot be understood is not retryable");
    } catch (const vstash::Error& e) {
      const std::string what = e.what();
      CHECK(what.rfind("pinecone test:1: POST /vectors/upsert: unexpected reply: not JSON", 0) == 0);
      CHECK(what.find("json.exception") == std::string::npos);
    }
    CHECK(server.requests().size() == 4);
  }
  TEST_CASE("every request says who it is: User-Agent vstash/VERSION") {
    ScriptedServer server;
    http::Client client(fast_options());
    client.send({"GET", server.url("/"), {}, "", {}});
    REQUIRE(server.requests().size() == 1);
    CHECK(server.requests()[0].find("User-Agent: vstash/" VSTASH_VERSION "\r\n") != std::string::npos);
  }
  TEST_CASE("the example REST profiles show the client's default timeout") {
    ::setenv("QDRANT_API_KEY", "k", 1);
    ::setenv("PINECONE_API_KEY", "k", 1);
    const char* src = std::getenv("VSTASH_SOURCE_DIR");
    REQUIRE(src != nullptr);
    for (const char* name : {"qdrant", "pinecone"}) {
      const auto file = vstash::load_profile_file(std::string(src) + "/configs/" + name + ".yaml");
      REQUIRE(file.profiles.count(name) == 1);
      CAPTURE(name);
      CHECK(file.profiles.at(name).get_int("timeout_ms", 0) == http::ClientOptions{}.timeout_ms);
    }
  }
}
