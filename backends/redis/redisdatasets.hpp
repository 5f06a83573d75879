// SPDX-License-Identifier: MIT
// The Redis store's dataset records for the catalog (backends/common/catalog.hpp): a
// dataset's record is its manifest hash (layout in redisbackend.cpp), its version the
// manifest's "INC:GEN". Each operation takes the dataset's commit turn; get() reads under
// WATCH manifest and insert/compare_and_set commit in MULTI/EXEC under that WATCH (or their
// own), so a compare-and-set loses to any write in between.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/common/catalog.hpp"
#include "backends/redis/redisrows.hpp"

namespace vstash::backends::redis {

class RedisDatasetRecords final : public catalog::DatasetRecords {
 public:
  RedisDatasetRecords(Connection& conn, const StoreConfig& cfg, DatasetRows& rows)
      : m_conn(conn), m_cfg(cfg), m_rows(rows) {}

  std::string location() const override { return m_rows.location(); }
  // An intact dataset's record (a partly expired one counts as missing: insert replaces it).
  std::optional<catalog::DatasetRecord> get(const std::string& name) override;
  std::vector<catalog::DatasetRecord> list() override;
  // A new incarnation with an empty ids hash and live key; what is left of an expired one
  // goes in the same EXEC.
  bool insert(const catalog::DatasetRecord& record) override;
  // The spec (with its metadata) and next_index, bumping gen and refreshing every key's ttl.
  bool compare_and_set(const catalog::DatasetRecord& seen, const catalog::DatasetRecord& next) override;
  bool remove(const std::string& name) override;

  // Every listed dataset's full snapshot, by name, intact ones only.
  std::vector<Snapshot> intact_snapshots();
  // Ends the WATCH that get() leaves on the manifest for a compare_and_set or insert that
  // did not come (the dataset was compatible and unchanged, or a conflict was thrown). Call
  // it when a Catalog operation returns or throws.
  void release() noexcept;

 private:
  // Under the turn and the manifest's WATCH: a light snapshot, full where the turn cannot vouch for it.
  std::optional<Snapshot> watched_snapshot(CommitTurn& turn, const DatasetKeys& keys);
  std::string datasets_key() const { return m_cfg.prefix + "datasets"; }
  // S > 1: the pending entries (version, chunk bound) of mutations that neither committed nor
  // cleaned up (a writer killed between its versions and its EXEC). Read before the MULTI.
  using Pending = std::vector<std::pair<uint32_t, int64_t>>;
  Pending pending_of(const Snapshot& snap);
  // Queues UNLINK of every key of snap's incarnation but the manifest (S = 1: one command for
  // the ids and live keys, then one per chunk), and of the leftovers' versions.
  void append_unlink(const Snapshot& snap, const Pending& leftovers);
  // A leftover's bound is trusted this far past the dataset's chunks (an ingest block's).
  static constexpr int64_t k_max_leftover_chunks = 4096;

  Connection& m_conn;
  const StoreConfig& m_cfg;
  DatasetRows& m_rows;
  // get() reads the record under WATCH manifest and keeps it armed, so that the
  // compare_and_set that follows (create_dataset's metadata merge: an ingest's watermark) is
  // just its MULTI/EXEC, two round trips in all as before the catalog.
  bool m_armed = false;
  std::optional<Snapshot> m_watched;  // what get() read under that WATCH
};

}  // namespace vstash::backends::redis
