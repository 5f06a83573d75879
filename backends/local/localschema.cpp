// SPDX-License-Identifier: MIT
// The local store's schema, its layout version, and the datasets table.
#include <fmt/format.h>
#include <iostream>
#include <tuple>

#include "backends/local/localstore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::local {

namespace {

// Layout 3. rows names each row's record (slot) in the dataset's segment file; datasets
// counts the committed slots of the current segment generation. rows is a rowid table
// (metadata may be large); the unique index on (dataset_id, idx) is the read order. Rows
// below datasets.implicit_rows have no `rows` entry unless materialised (localimplicit.cpp).
constexpr const char* k_schema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE datasets(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  dtype TEXT NOT NULL,
  row_shape TEXT NOT NULL,
  label_dtype TEXT,
  label_shape TEXT NOT NULL,
  metric TEXT NOT NULL,
  metadata TEXT NOT NULL,
  next_index INTEGER NOT NULL DEFAULT 0,
  row_count INTEGER NOT NULL DEFAULT 0,
  row_bytes INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  slots INTEGER NOT NULL DEFAULT 0,
  generation INTEGER NOT NULL DEFAULT 1,
  in_order INTEGER NOT NULL DEFAULT 1,
  implicit_rows INTEGER NOT NULL DEFAULT 0);
CREATE TABLE row_deletions(
  dataset_id INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  PRIMARY KEY(dataset_id, idx)) WITHOUT ROWID;
CREATE TABLE rows(
  dataset_id INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  id TEXT NOT NULL,
  slot INTEGER NOT NULL,
  metadata TEXT);
CREATE UNIQUE INDEX rows_by_index ON rows(dataset_id, idx);
CREATE UNIQUE INDEX rows_by_id ON rows(dataset_id, id);
CREATE TABLE checkpoints(
  model TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  metrics TEXT NOT NULL,
  metadata TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY(model, epoch)) WITHOUT ROWID;
CREATE TABLE checkpoint_arrays(
  model TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  name TEXT NOT NULL,
  chunk INTEGER NOT NULL,
  dtype TEXT NOT NULL,
  shape TEXT NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY(model, epoch, name, chunk));
CREATE TABLE progress(
  run TEXT NOT NULL,
  rank INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  step INTEGER NOT NULL,
  metrics TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY(run, rank)) WITHOUT ROWID;
)sql";

// Layout 1 -> 2, after every dataset's records were copied, in row order, to generation 1.
constexpr const char* k_migrate_1_to_2 = R"sql(
ALTER TABLE datasets ADD COLUMN slots INTEGER NOT NULL DEFAULT 0;
ALTER TABLE datasets ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
ALTER TABLE datasets ADD COLUMN in_order INTEGER NOT NULL DEFAULT 1;
CREATE TABLE rows2(
  dataset_id INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  id TEXT NOT NULL,
  slot INTEGER NOT NULL,
  metadata TEXT);
INSERT INTO rows2(dataset_id, idx, id, slot, metadata)
  SELECT dataset_id, idx, id, row_number() OVER (PARTITION BY dataset_id ORDER BY idx) - 1, metadata FROM rows;
DROP TABLE rows;
ALTER TABLE rows2 RENAME TO rows;
CREATE UNIQUE INDEX rows_by_index ON rows(dataset_id, idx);
CREATE UNIQUE INDEX rows_by_id ON rows(dataset_id, id);
UPDATE datasets SET slots = (SELECT count(*) FROM rows WHERE rows.dataset_id = datasets.id), generation = 1,
  in_order = 1;
UPDATE meta SET value = '2' WHERE key = 'layout_version';
)sql";

// Layout 2 -> 3: schema only; every existing row stays explicit (implicit_rows 0).
constexpr const char* k_migrate_2_to_3 = R"sql(
ALTER TABLE datasets ADD COLUMN implicit_rows INTEGER NOT NULL DEFAULT 0;
CREATE TABLE row_deletions(
  dataset_id INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  PRIMARY KEY(dataset_id, idx)) WITHOUT ROWID;
UPDATE meta SET value = '3' WHERE key = 'layout_version';
)sql";

constexpr const char* k_dataset_columns =
    "id, name, dtype, row_shape, label_dtype, label_shape, metric, metadata, next_index, row_count, row_bytes, "
    "version, created_at, slots, generation, in_order, implicit_rows";
// A layout 2 store read as it is (read-only): no implicit rows.
constexpr const char* k_dataset_columns_2 =
    "id, name, dtype, row_shape, label_dtype, label_shape, metric, metadata, next_index, row_count, row_bytes, "
    "version, created_at, slots, generation, in_order, 0";

// The datasets columns this connection's snapshot has (a layout 2 store read-only may have
// been migrated by a writer since the last read).
const char* dataset_columns(Connection& conn) {
  if (conn.layout() < k_layout_version) {
    conn.set_layout(read_layout_version(conn));
  }
  return conn.layout() < k_layout_version ? k_dataset_columns_2 : k_dataset_columns;
}

Shape parse_shape(const std::string& text) { return json::parse(text).get<Shape>(); }

DatasetRecord record_from(const Stmt& s) {
  DatasetRecord r;
  r.id = s.int_at(0);
  r.spec.name = s.text_at(1);
  r.spec.dtype = parse_dtype_name(s.text_at(2));
  r.spec.row_shape = parse_shape(s.text_at(3));
  if (!s.is_null(4)) {
    r.spec.label_dtype = parse_dtype_name(s.text_at(4));
  }
  r.spec.label_shape = parse_shape(s.text_at(5));
  r.spec.metric = parse_metric(s.text_at(6));
  r.spec.metadata = json::parse(s.text_at(7));
  r.next_index = s.int_at(8);
  r.row_count = s.int_at(9);
  r.row_bytes = s.int_at(10);
  r.version = s.int_at(11);
  r.created_at = s.text_at(12);
  r.slots = s.int_at(13);
  r.generation = s.int_at(14);
  r.in_order = s.int_at(15) != 0;
  r.implicit_rows = s.int_at(16);
  return r;
}

// Copies every dataset's rows (index order) from the layout 1 blobs into generation 1
// segment files, synced, then switches the schema in the same transaction: a crash before
// the commit leaves a layout 1 store (and files the next migration overwrites).
void migrate_1_to_2(Connection& conn) {
  auto total = conn.prepare("SELECT count(*) FROM rows");
  total.step();
  std::cerr << fmt::format("{}: migrating local store layout 1 -> 2 ({} rows)\n", conn.path(), total.int_at(0));
  total.reset();
  std::vector<std::tuple<int64_t, size_t, size_t>> datasets;  // id, sample bytes, label bytes
  {
    auto s = conn.prepare("SELECT id, dtype, row_shape, label_dtype, label_shape FROM datasets");
    while (s.step()) {
      const size_t sample =
          dtype_size(parse_dtype_name(s.text_at(1))) * static_cast<size_t>(shape_product(parse_shape(s.text_at(2))));
      const size_t label = s.is_null(3) ? 0
                                        : dtype_size(parse_dtype_name(s.text_at(3))) *
                                              static_cast<size_t>(shape_product(parse_shape(s.text_at(4))));
      datasets.emplace_back(s.int_at(0), sample, label);
    }
  }
  constexpr size_t k_buffer_bytes = size_t{8} << 20;
  for (const auto& [id, sample, label] : datasets) {
    SegmentWriter out(segment_path(conn.path(), id, 1), sample + label, true);
    std::vector<std::byte> buffer;
    int64_t slot = 0;
    int64_t first = 0;
    auto s = conn.prepare("SELECT idx, data, label FROM rows WHERE dataset_id = ?1 ORDER BY idx");
    s.bind(1, id);
    while (s.step()) {
      const auto data = s.blob_at(1);
      const auto lab = s.blob_at(2);
      if (data.size() != sample || lab.size() != label) {
        throw Error(fmt::format("{}: dataset {}: row at index {} has {} + {} bytes, expected {} + {}", conn.path(), id,
                                s.int_at(0), data.size(), lab.size(), sample, label));
      }
      buffer.insert(buffer.end(), data.begin(), data.end());
      buffer.insert(buffer.end(), lab.begin(), lab.end());
      ++slot;
      if (buffer.size() >= k_buffer_bytes) {
        out.write(first, buffer);
        first = slot;
        buffer.clear();
      }
    }
    out.write(first, buffer);
    out.sync();
  }
  conn.exec(k_migrate_1_to_2);
}

}  // namespace

std::string dump_json(const json& j, std::string_view what) {
  try {
    return j.dump();
  } catch (const json::exception&) {
    throw UsageError(fmt::format("{}: metadata is not valid UTF-8", what));
  }
}

void configure_connection(Connection& conn) {
  // NORMAL is crash-safe in WAL mode: a commit is durable once its WAL frames are written,
  // which survives a killed process; only an OS crash or power loss can lose the last
  // commits, and even then the database stays consistent. Checkpoint saves switch to FULL.
  conn.exec("PRAGMA synchronous=NORMAL");
  conn.exec("PRAGMA cache_size=-16384");
  // Reads through a mapping rather than a pread per page: a new process looking up the ids
  // of one batch of 256 rows otherwise makes ~500 system calls.
  conn.exec("PRAGMA mmap_size=268435456");
}

int64_t read_layout_version(Connection& conn) {
  auto s = conn.prepare("SELECT value FROM meta WHERE key = 'layout_version'");
  if (!s.step()) {
    throw Error(fmt::format("{}: not a vstash local store (no layout version)", conn.path()));
  }
  const std::string v = s.text_at(0);
  try {
    return std::stoll(v);
  } catch (const std::exception&) {
    throw Error(fmt::format("{}: bad layout version \"{}\"", conn.path(), v));
  }
}

void ensure_schema(Connection& conn) {
  // WAL lets readers in other threads and processes read while one writer writes.
  conn.exec("PRAGMA journal_mode=WAL");
  configure_connection(conn);
  auto check = [&] {
    const int64_t v = read_layout_version(conn);
    if (v > k_layout_version) {
      throw Error(fmt::format("{}: store layout version {} is newer than this vstash supports ({}); upgrade vstash",
                              conn.path(), v, k_layout_version));
    }
  };
  auto table_count = [&](const char* where) {
    auto s = conn.prepare(std::string("SELECT count(*) FROM sqlite_master WHERE type = 'table'") + where);
    s.step();
    return s.int_at(0);
  };
  if (table_count(" AND name = 'meta'") == 1) {
    check();
    if (read_layout_version(conn) < k_layout_version) {
      Transaction txn(conn, true);
      // Re-check under the write lock: another process may have migrated meanwhile.
      if (read_layout_version(conn) == 1) {
        migrate_1_to_2(conn);
      }
      if (read_layout_version(conn) == 2) {
        std::cerr << fmt::format("{}: migrating local store layout 2 -> 3 (schema only)\n", conn.path());
        conn.exec(k_migrate_2_to_3);
      }
      txn.commit();
    }
    return;
  }
  Transaction txn(conn, true);
  // Re-check under the write lock: another process may have created the store meanwhile.
  if (table_count(" AND name = 'meta'") == 1) {
    txn.commit();
    check();
    return;
  }
  if (table_count("") > 0) {
    throw Error(fmt::format("{}: not a vstash local store (a SQLite database with other tables)", conn.path()));
  }
  conn.exec(k_schema);
  conn.prepare("INSERT INTO meta(key, value) VALUES('layout_version', ?1)")
      .bind(1, std::to_string(k_layout_version))
      .run();
  conn.prepare("INSERT INTO meta(key, value) VALUES('created_at', ?1)").bind(1, now_rfc3339()).run();
  txn.commit();
}

DatasetInfo DatasetRecord::info() const {
  DatasetInfo i;
  i.spec = spec;
  i.rows = row_count;
  i.next_index = next_index;
  i.bytes = row_bytes;
  i.extra = {{"created_at", created_at},
             {"version", version},
             {"segment_generation", generation},
             {"segment_slots", slots},
             {"implicit_rows", implicit_rows}};
  return i;
}

std::optional<DatasetRecord> find_dataset(Connection& conn, const std::string& name) {
  auto s = conn.prepare(fmt::format("SELECT {} FROM datasets WHERE name = ?1", dataset_columns(conn)));
  s.bind(1, name);
  if (!s.step()) {
    return std::nullopt;
  }
  return record_from(s);
}

std::vector<DatasetRecord> all_datasets(Connection& conn) {
  auto s = conn.prepare(fmt::format("SELECT {} FROM datasets ORDER BY name", dataset_columns(conn)));
  std::vector<DatasetRecord> out;
  while (s.step()) {
    out.push_back(record_from(s));
  }
  return out;
}

void insert_dataset(Connection& conn, const DatasetSpec& spec) {
  auto s = conn.prepare(
      "INSERT INTO datasets(name, dtype, row_shape, label_dtype, label_shape, metric, metadata, created_at) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  s.bind(1, spec.name).bind(2, std::string(dtype_name(spec.dtype))).bind(3, json(spec.row_shape).dump());
  if (spec.label_dtype) {
    s.bind(4, std::string(dtype_name(*spec.label_dtype)));
  }
  s.bind(5, json(spec.label_shape).dump()).bind(6, std::string(metric_name(spec.metric)));
  s.bind(7, dump_json(spec.metadata.is_null() ? json::object() : spec.metadata, "dataset \"" + spec.name + "\""));
  s.bind(8, now_rfc3339());
  s.run();
}

}  // namespace vstash::backends::local
