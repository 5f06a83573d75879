// SPDX-License-Identifier: MIT
// The local store's row writes (backends/local/localrows.cpp): a run of rows without metadata
// at consecutive indices is inserted by one statement, with the same rows and counters as row
// by row; a resent run (held ids), a held index, metadata or an id that needs JSON escaping go
// row by row.
#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "backends/local/localstore.hpp"
#include "src/errors.hpp"
#include "tests/testutil.hpp"

using namespace vstash;
using namespace vstash::backends;
using namespace vstash::backends::local;

namespace {

struct Store {
  explicit Store(const std::string& name) : conn((testutil::scratch_dir(name) / "store.db").string()) {
    ensure_schema(conn);
    DatasetSpec spec;
    spec.name = std::string("d");
    spec.dtype = DType::f32;
    spec.row_shape = {4};
    spec.metric = Metric::euclidean;
    Transaction txn(conn, true);
    insert_dataset(conn, spec);
    txn.commit();
    sqlite3_trace_v2(
        conn.handle(), SQLITE_TRACE_STMT,
        [](unsigned, void* n, void*, void*) {
          ++*static_cast<int*>(n);
          return 0;
        },
        &statements);
  }

  // Writes b in one transaction; returns how many SQL statements it ran.
  int write(const RowBatch& b) {
    statements = 0;
    Transaction txn(conn, true);
    const auto ds = require_dataset(conn, "d");
    auto k = RowCounters::of(ds);
    write_batch(conn, ds, b, k);
    save_counters(conn, ds.id, k);
    txn.commit();
    return statements;
  }

  // "idx:id:slot" of every row in index order, explicit or implicit (backends/local/localimplicit.cpp).
  std::string rows() {
    std::string out;
    const auto ds = require_dataset(conn, "d");
    for_each_row(conn, ds, 0, INT64_MAX, [&](int64_t idx, int64_t slot, const Stmt* row) {
      out += std::to_string(idx) + ":" + (row ? row->text_at(1) : std::to_string(idx)) + ":" + std::to_string(slot) +
             (row && !row->is_null(3) ? "+md " : " ");
    });
    return out;
  }

  Connection conn;
  int statements = 0;  // SQL statements run since the last write() began
};

// Rows first..first+n-1 with ids as written by `id` and indices first.. (none when !indices).
RowBatch run(int64_t first, int64_t n, const std::function<std::string(int64_t)>& id, bool indices = true) {
  RowBatch b;
  b.data = testutil::random_f32(n, 4, static_cast<uint32_t>(first + 1));
  for (int64_t i = first; i < first + n; ++i) {
    b.ids.push_back(id(i));
    if (indices) {
      b.indices.push_back(i);
    }
    b.metadata.push_back(nullptr);
  }
  return b;
}

std::string decimal(int64_t i) { return std::to_string(i); }

std::string expected(int64_t first, int64_t n, int64_t slot) {
  std::string out;
  for (int64_t i = first; i < first + n; ++i) {
    out += std::to_string(i) + ":" + std::to_string(i) + ":" + std::to_string(slot + i - first) + " ";
  }
  return out;
}

}  // namespace

TEST_SUITE("backends::local::rows") {
  TEST_CASE("a plain run is one statement and leaves the rows and counters of a row-by-row write") {
    Store st("localrows-run");
    // Row by row this is two statements a row (~7 us each: most of a 1M-row ingest).
    CHECK(st.write(run(0, 1000, decimal)) < 10);
    CHECK(st.write(run(1000, 24, decimal, false)) < 10);  // auto-assigned indices
    CHECK(st.rows() == expected(0, 1024, 0));
    auto ds = require_dataset(st.conn, "d");
    CHECK(ds.row_count == 1024);
    CHECK(ds.next_index == 1024);
    CHECK(ds.slots == 1024);
    CHECK(ds.row_bytes == 1024 * 16);
    CHECK(ds.plain());
    // A gap (another rank's slice first): still one statement, in order, not dense.
    CHECK(st.write(run(2000, 10, decimal)) < 10);
    ds = require_dataset(st.conn, "d");
    CHECK(ds.next_index == 2010);
    CHECK(ds.row_count == 1034);
    CHECK(ds.in_order);
    CHECK_FALSE(ds.dense());
    CHECK(st.rows() == expected(0, 1024, 0) + expected(2000, 10, 1024));
    // The gap filled later (a slower rank): one statement, dense, no longer in order.
    CHECK(st.write(run(1024, 976, decimal)) < 10);
    ds = require_dataset(st.conn, "d");
    CHECK(ds.next_index == 2010);
    CHECK(ds.row_count == 2010);
    CHECK(ds.slots == 2010);
    CHECK(ds.dense());
    CHECK_FALSE(ds.in_order);
    CHECK(st.rows() == expected(0, 1024, 0) + expected(1024, 976, 1034) + expected(2000, 10, 1024));
    // An index held by another id is still the row-by-row conflict, and changes nothing.
    CHECK_THROWS_WITH_AS(st.write(run(5, 2, [](int64_t i) { return "x" + std::to_string(i); })),
                         "dataset \"d\": row \"x5\": index 5 is held by row \"5\"", ConflictError);
    CHECK(require_dataset(st.conn, "d").row_count == 2010);
  }

  TEST_CASE("a resent run, a held id, other ids or metadata go row by row with the upsert rule") {
    Store st("localrows-fallback");
    st.write(run(0, 10, decimal));
    // ingest --resume re-sends committed rows: replaced in place, no duplicate.
    CHECK(st.write(run(5, 10, decimal)) > 10);
    auto ds = require_dataset(st.conn, "d");
    CHECK(ds.row_count == 15);
    CHECK(ds.slots == 20);
    CHECK_FALSE(ds.in_order);
    CHECK(st.rows() == expected(0, 5, 0) + expected(5, 10, 10));

    Store held("localrows-held");
    auto custom = run(0, 1, [](int64_t) { return std::string("3"); });
    held.write(custom);  // id "3" at index 0
    held.write(run(1, 4, decimal));
    CHECK(held.rows() == "1:1:1 2:2:2 3:3:3 4:4:4 ");  // "3" moved to index 3, index 0 freed
    CHECK(require_dataset(held.conn, "d").row_count == 4);

    Store other("localrows-other");
    CHECK(other.write(run(0, 20, [](int64_t i) { return "r" + std::to_string(i); })) < 10);  // --ids
    CHECK(other.rows().starts_with("0:r0:0 1:r1:1 "));
    auto md = run(20, 20, decimal);
    md.metadata[3] = json{{"k", 1}};
    CHECK(other.write(md) > 20);
    CHECK(other.rows().find("23:23:23+md ") != std::string::npos);
    const std::string quoted = "q\"\\";  // needs escaping in JSON: row by row
    CHECK(other.write(run(40, 20, [&](int64_t i) { return i == 45 ? quoted : "r" + std::to_string(i); })) > 20);
    CHECK(other.rows().find("45:" + quoted + ":45 ") != std::string::npos);
    CHECK(require_dataset(other.conn, "d").row_count == 60);
  }
}
