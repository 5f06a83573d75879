// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>

#include "backends/http/httpclient.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"

namespace http = vstash::backends::http;

namespace {

// A scripted HTTP/1.1 server on a loopback port: each request takes the next scripted
// reply (or 200 "{}" when the script is empty); "drop" closes the connection unanswered,
// "truncate" announces 100 bytes more than it sends and then closes.
class ScriptedServer {
 public:
  struct Reply {
    int status = 200;
    std::string body = "{}";
    std::string extra_headers;
    bool drop = false;
    bool truncate = false;
  };

  ScriptedServer() {
    m_listen = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(m_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(m_listen, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    socklen_t len = sizeof(addr);
    ::getsockname(m_listen, reinterpret_cast<sockaddr*>(&addr), &len);
    m_port = ntohs(addr.sin_port);
    REQUIRE(::listen(m_listen, 64) == 0);
    m_acceptor = std::thread([this] { accept_loop(); });
  }

  ~ScriptedServer() {
    m_stop = true;
    ::shutdown(m_listen, SHUT_RDWR);
    ::close(m_listen);
    m_acceptor.join();
    {
      std::lock_guard lock(m_mutex);
      for (int fd : m_open) {
        ::shutdown(fd, SHUT_RDWR);
      }
    }
    for (auto& t : m_workers) {
      t.join();
    }
  }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(m_port) + path; }
  void script(Reply reply) {
    std::lock_guard lock(m_mutex);
    m_script.push_back(std::move(reply));
  }
  std::vector<std::string> requests() {
    std::lock_guard lock(m_mutex);
    return m_requests;
  }
  int connections() {
    std::lock_guard lock(m_mutex);
    return static_cast<int>(m_connections.size());
  }

 private:
  void accept_loop() {
    while (!m_stop) {
      int fd = ::accept(m_listen, nullptr, nullptr);
      if (fd < 0) {
        return;
      }
      std::lock_guard lock(m_mutex);
      m_connections.push_back(fd);
      m_open.push_back(fd);
      m_workers.emplace_back([this, fd] { serve(fd); });
    }
  }

  void close_connection(int fd) {
    std::lock_guard lock(m_mutex);
    std::erase(m_open, fd);
    ::close(fd);
  }

  void serve(int fd) {
    std::string buffer;
    char chunk[65536];
    for (;;) {
      size_t header_end;
      while ((header_end = buffer.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) {
          close_connection(fd);
          return;
        }
        buffer.append(chunk, static_cast<size_t>(n));
      }
      std::string head = buffer.substr(0, header_end);
      size_t length = 0;
      auto cl = head.find("Content-Length: ");
      if (cl != std::string::npos) {
        length = std::stoul(head.substr(cl + 16));
      }
      while (buffer.size() < header_end + 4 + length) {
        ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) {
          close_connection(fd);
          return;
        }
        buffer.append(chunk, static_cast<size_t>(n));
      }
      std::string request = buffer.substr(0, header_end + 4 + length);
      buffer.erase(0, header_end + 4 + length);
      Reply reply;
      {
        std::lock_guard lock(m_mutex);
        m_requests.push_back(request);
        if (!m_script.empty()) {
          reply = m_script.front();
          m_script.pop_front();
        }
      }
      if (reply.drop) {
        close_connection(fd);
        return;
      }
      std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\nContent-Type: application/json\r\n" +
                        reply.extra_headers +
                        "Content-Length: " + std::to_string(reply.body.size() + (reply.truncate ? 100 : 0)) +
                        "\r\n\r\n" + reply.body;
      ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (reply.truncate) {
        close_connection(fd);
        return;
      }
    }
  }

  int m_listen = -1;
  int m_port = 0;
  std::atomic<bool> m_stop{false};
  std::thread m_acceptor;
  std::mutex m_mutex;
  std::deque<Reply> m_script;
  std::vector<std::string> m_requests;
  std::vector<int> m_connections;
  std::vector<int> m_open;
  std::vector<std::thread> m_workers;
};

http::ClientOptions fast_options() {
  http::ClientOptions o;
  o.server = "test:1";
  o.backoff_base_s = 0.001;
  o.backoff_cap_s = 0.01;
  o.max_attempts = 4;
  o.connect_timeout_ms = 2000;
  o.timeout_ms = 5000;
  return o;
}

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
  TEST_CASE("one retry rule for every store: statuses, and a used-up quota is final") {
    auto status = [](long s, std::string body = "{}") {
      http::Response r;
      r.status = s;
      r.body = std::move(body);
      return r;
    };
    for (long s : {408L, 429L, 500L, 502L, 503L, 504L}) {
      CHECK(http::is_retryable_status(status(s)));
    }
    for (long s : {200L, 400L, 401L, 403L, 404L, 409L, 422L, 501L, 507L}) {
      CHECK_FALSE(http::is_retryable_status(status(s)));
    }
    CHECK_FALSE(http::is_retryable_status(status(429, "You've reached your write unit limit for the current month")));
    CHECK_THROWS_AS(http::raise_for_status(status(401), "qdrant x: GET /", "no", "api_key"), vstash::UsageError);
    CHECK_THROWS_WITH(http::raise_for_status(status(403), "s: GET /", "forbidden", "api_key"),
                      "s: GET /: authentication failed (HTTP 403): check api_key: forbidden");
    CHECK_THROWS_AS(http::raise_for_status(status(503), "s", "m", "api_key"), vstash::RetryableError);
    CHECK_THROWS_AS(http::raise_for_status(status(404), "s", "m", "api_key"), vstash::NotFoundError);
    CHECK_THROWS_AS(http::raise_for_status(status(409), "s", "m", "api_key"), vstash::ConflictError);
    CHECK_THROWS_AS(http::raise_for_status(status(422), "s", "m", "api_key"), vstash::UsageError);
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
