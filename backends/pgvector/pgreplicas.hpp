// SPDX-License-Identifier: MIT
// Read replicas of the pgvector store (profile key read_replicas: "host:port,host:port"):
// which session serves a read. The rule (docs/backends.md, "Scaling out"):
//   - row reads (read_rows, read_positions, fetch, count, query: `batch`, `export`, `query`,
//     `get`) go to a replica, reading the catalog entry from the same replica in the same
//     transaction so that rows and counts agree; everything else (writes, catalog changes,
//     dataset_info, checkpoints, progress) goes to the primary;
//   - once this process has written to any pgvector store, its reads go to the primary too
//     (read-your-writes within a process; another process's writes reach a replica after
//     its replication lag);
//   - each store opened in a process sticks to one replica (monotonic reads), the first chosen
//     by process id and the next ones round-robin;
//   - a replica that cannot be reached is dropped for the rest of the process with a one-line
//     warning on stderr and the primary serves the read instead.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/pgvector/pgconnection.hpp"

namespace vstash::backends::pgvector {

// The replicas' settings: the primary's with host and port replaced. Throws UsageError
// naming the profile key for an entry that is not host:port with a port in 1..65535.
std::vector<ConnectionSettings> parse_replicas(const std::string& value, const ConnectionSettings& primary);

// Marks that this process wrote: from now on reads go to the primary.
void note_write();

class ReadRoute {
 public:
  ReadRoute(Session& primary, const std::vector<ConnectionSettings>& replicas, const std::vector<std::string>& secrets);
  // The session to read from, connected (the primary when there is no usable replica).
  Session& reader();

 private:
  Session& m_primary;
  std::unique_ptr<Session> m_replica;  // null: none configured, or unreachable
};

}  // namespace vstash::backends::pgvector
