// SPDX-License-Identifier: MIT
// Read replicas: parsing read_replicas and choosing the session that serves a read.
#include "backends/pgvector/pgreplicas.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>

#include "src/errors.hpp"

namespace vstash::backends::pgvector {

namespace {

std::atomic<bool> g_wrote{false};
std::atomic<unsigned> g_opened{0};

ConnectionSettings replica_of(const std::string& entry, const ConnectionSettings& primary) {
  const auto colon = entry.rfind(':');
  int64_t port = 0;
  const char* end = entry.data() + entry.size();
  const bool ok = colon != std::string::npos && colon > 0 &&
                  std::from_chars(entry.data() + colon + 1, end, port).ptr == end && colon + 1 < entry.size() &&
                  port >= 1 && port <= 65535;
  if (!ok) {
    throw UsageError(fmt::format("pgvector: read_replicas: \"{}\" is not host:port", entry));
  }
  ConnectionSettings s = primary;
  s.host = entry.substr(0, colon);
  s.port = port;
  return s;
}

}  // namespace

std::vector<ConnectionSettings> parse_replicas(const std::string& value, const ConnectionSettings& primary) {
  std::vector<ConnectionSettings> out;
  size_t start = 0;
  while (start <= value.size() && !value.empty()) {
    const size_t comma = std::min(value.find(',', start), value.size());
    std::string entry = value.substr(start, comma - start);
    const auto first = entry.find_first_not_of(' ');
    entry = first == std::string::npos ? std::string() : entry.substr(first, entry.find_last_not_of(' ') - first + 1);
    out.push_back(replica_of(entry, primary));
    start = comma + 1;
  }
  return out;
}

void note_write() { g_wrote = true; }

ReadRoute::ReadRoute(Session& primary, const std::vector<ConnectionSettings>& replicas,
                     const std::vector<std::string>& secrets)
    : m_primary(primary) {
  if (!replicas.empty()) {
    const auto pick = (static_cast<unsigned>(getpid()) + g_opened++) % replicas.size();
    m_replica = std::make_unique<Session>(replicas[pick], secrets);
  }
}

Session& ReadRoute::reader() {
  if (!m_replica || g_wrote) {
    return m_primary;
  }
  try {
    m_replica->conn();
    return *m_replica;
  } catch (const RetryableError&) {
    std::fprintf(stderr, "vstash: warning: read replica %s unreachable; reading from the primary %s\n",
                 m_replica->location().c_str(), m_primary.location().c_str());
    m_replica.reset();
    return m_primary;
  }
}

}  // namespace vstash::backends::pgvector
