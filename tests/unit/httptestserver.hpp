// SPDX-License-Identifier: MIT
// A scripted HTTP/1.1 server on a loopback port for the HTTP layer's unit tests
// (test_http_client.cpp, test_http_status_policy.cpp), and client options that retry fast.
#pragma once

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/http/httpclient.hpp"

namespace vstash::testing {

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

inline backends::http::ClientOptions fast_http_options() {
  backends::http::ClientOptions o;
  o.server = "test:1";
  o.backoff_base_s = 0.001;
  o.backoff_cap_s = 0.01;
  o.max_attempts = 4;
  o.connect_timeout_ms = 2000;
  o.timeout_ms = 5000;
  return o;
}

}  // namespace vstash::testing
