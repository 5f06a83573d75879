// SPDX-License-Identifier: MIT
// Reading stored rows: by position (a range, or any positions), a streamed batch's samples, by
// id, and counting them.
#include "backends/pgvector/pgvectorstore.hpp"

#include <fmt/format.h>
#include <cstring>
#include <unordered_map>

#include "backends/pgvector/pgfilter.hpp"
#include "backends/pgvector/pgsamples.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pgvector {

namespace {

RowBatch reorder(const RowBatch& in, const std::vector<size_t>& order) {
  RowBatch out;
  const auto n = static_cast<int64_t>(order.size());
  Shape shape = in.data.shape();
  shape[0] = n;
  out.data = Array(in.data.dtype(), shape);
  if (in.labels) {
    Shape ls = in.labels->shape();
    ls[0] = n;
    out.labels = Array(in.labels->dtype(), ls);
  }
  for (int64_t i = 0; i < n; ++i) {
    const size_t src = order[static_cast<size_t>(i)];
    out.ids.push_back(in.ids[src]);
    out.indices.push_back(in.indices[src]);
    out.metadata.push_back(in.metadata[src]);
    const auto from = in.data.row(static_cast<int64_t>(src));
    std::memcpy(out.data.row(i).data(), from.data(), from.size());
    if (in.labels) {
      const auto lf = in.labels->row(static_cast<int64_t>(src));
      std::memcpy(out.labels->row(i).data(), lf.data(), lf.size());
    }
  }
  return out;
}

std::string bigint_array(const std::vector<int64_t>& v) { return fmt::format("{{{}}}", fmt::join(v, ",")); }

}  // namespace

RowBatch PgvectorBackend::decode_rows(const CatalogEntry& e, const Result& r, int first_col) const {
  RowBatch b;
  const int n = r.rows();
  Shape shape{n};
  shape.insert(shape.end(), e.spec.row_shape.begin(), e.spec.row_shape.end());
  b.data = Array(e.spec.dtype, shape);
  if (e.spec.label_dtype) {
    Shape ls{n};
    ls.insert(ls.end(), e.spec.label_shape.begin(), e.spec.label_shape.end());
    b.labels = Array(*e.spec.label_dtype, ls);
  }
  const int c = first_col;
  for (int i = 0; i < n; ++i) {
    b.ids.push_back(r.text(i, c));
    b.indices.push_back(r.int8(i, c + 1));
    auto dst = b.data.row(i);
    if (!r.is_null(i, c + 3)) {
      const auto raw = r.get(i, c + 3);
      if (raw.size() != dst.size()) {
        throw Error(fmt::format("{}: dataset \"{}\": row \"{}\": stored sample has {} bytes, expected {}",
                                m_session.location(), e.spec.name, b.ids.back(), raw.size(), dst.size()));
      }
      std::memcpy(dst.data(), raw.data(), dst.size());
    } else {
      const auto v = decode_vector(r.get(i, c + 2));
      if (v.size() * 4 != dst.size()) {
        throw Error(fmt::format("{}: dataset \"{}\": row \"{}\": stored vector has {} dimensions", m_session.location(),
                                e.spec.name, b.ids.back(), v.size()));
      }
      std::memcpy(dst.data(), v.data(), dst.size());
    }
    if (b.labels) {
      auto ldst = b.labels->row(i);
      const auto raw = r.is_null(i, c + 4) ? std::string_view() : r.get(i, c + 4);
      if (raw.size() != ldst.size()) {
        throw Error(fmt::format("{}: dataset \"{}\": row \"{}\": stored label has {} bytes, expected {}",
                                m_session.location(), e.spec.name, b.ids.back(), raw.size(), ldst.size()));
      }
      std::memcpy(ldst.data(), raw.data(), ldst.size());
    }
    b.metadata.push_back(r.is_null(i, c + 5) ? json(nullptr) : json::parse(r.get(i, c + 5)));
  }
  return b;
}

RowBatch PgvectorBackend::read_rows(const std::string& dataset, int64_t offset, int64_t count) {
  if (offset < 0 || count < 0) {
    throw UsageError(fmt::format("dataset \"{}\": offset and count must not be negative", dataset));
  }
  RowBatch out;
  const Tables& t = tables();
  Session& s = m_reads.reader();
  s.read("reading rows of " + ctx(dataset), [&](pqxx::work&) {
    s.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const CatalogEntry e = require_on(s, dataset);
    const std::string table = s.quote(e.table);
    // When no index was skipped or deleted, a row's position is its index: a range scan.
    const bool dense = e.rows == e.next_index;
    const std::string sql =
        dense ? fmt::format("SELECT {} FROM {} WHERE idx >= $1::bigint AND idx < $1::bigint + $2::bigint ORDER BY idx",
                            k_read_columns, table)
              : fmt::format("SELECT {} FROM {} ORDER BY idx OFFSET $1::bigint LIMIT $2::bigint", k_read_columns, table);
    out = decode_rows(e, s.exec(sql, {Param(offset), Param(count)}, true), 0);
  });
  (void)t;
  return out;
}

RowBatch PgvectorBackend::read_positions(const std::string& dataset, const std::vector<int64_t>& positions) {
  return read_positions_seen(dataset, positions, nullptr);
}

// A streamed epoch reads batch after batch of one dataset: once a transactional read has
// shown it dense, the next batches take one autocommit statement each (pgsamples.hpp)
// instead of BEGIN, SET TRANSACTION, the catalog row, the rows and COMMIT.
RowBatch PgvectorBackend::read_samples(const std::string& dataset, const std::vector<int64_t>& positions) {
  const Tables& t = tables();
  Session& s = m_reads.reader();
  const auto known = m_sampled.find(dataset);
  if (known != m_sampled.end() && !t.citus) {
    std::optional<RowBatch> got;
    try {
      s.run("reading rows of " + ctx(dataset),
            [&] { got = read_samples_once(s, t.datasets, known->second, positions); });
    } catch (const RetryableError&) {
      // A lost connection (or a timeout): the transactional path reconnects and tries again.
    }
    if (got) {
      return std::move(*got);
    }
  }
  CatalogEntry seen;
  RowBatch out = read_positions_seen(dataset, positions, &seen);
  if (seen.rows == seen.next_index) {
    m_sampled[dataset] = seen;
  } else {
    m_sampled.erase(dataset);
  }
  return out;
}

RowBatch PgvectorBackend::read_positions_seen(const std::string& dataset, const std::vector<int64_t>& positions,
                                              CatalogEntry* seen) {
  RowBatch out;
  tables();
  Session& s = m_reads.reader();
  s.read("reading rows of " + ctx(dataset), [&](pqxx::work&) {
    s.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const CatalogEntry e = require_on(s, dataset);
    if (seen != nullptr) {
      *seen = e;
    }
    for (int64_t p : positions) {
      if (p < 0 || p >= e.rows) {
        throw UsageError(fmt::format("dataset \"{}\": position {} is out of range (0 to {})", dataset, p, e.rows - 1));
      }
    }
    const std::string table = s.quote(e.table);
    const bool dense = e.rows == e.next_index;
    const std::string sql =
        dense ? fmt::format("SELECT {}, idx FROM {} WHERE idx = ANY($1::bigint[])", k_read_columns, table)
              : fmt::format(
                    "SELECT {}, pos FROM (SELECT *, row_number() OVER (ORDER BY idx) - 1 AS pos FROM {}) r "
                    "WHERE pos = ANY($1::bigint[])",
                    k_read_columns, table);
    const Result r = s.exec(sql, {Param(bigint_array(positions))}, true);
    const RowBatch got = decode_rows(e, r, 0);
    std::unordered_map<int64_t, size_t> at;
    for (int i = 0; i < r.rows(); ++i) {
      at[r.int8(i, 6)] = static_cast<size_t>(i);
    }
    std::vector<size_t> order;
    for (int64_t p : positions) {
      order.push_back(at.at(p));
    }
    out = reorder(got, order);
  });
  return out;
}

RowBatch PgvectorBackend::fetch(const std::string& dataset, const std::vector<std::string>& ids) {
  RowBatch out;
  tables();
  Session& s = m_reads.reader();
  s.read("fetching rows of " + ctx(dataset), [&](pqxx::work&) {
    const CatalogEntry e = require_on(s, dataset);
    const Result r = s.exec(fmt::format("SELECT {} FROM {} WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))",
                                        k_read_columns, s.quote(e.table)),
                            {Param(ids_json(ids))}, true);
    const RowBatch got = decode_rows(e, r, 0);
    std::unordered_map<std::string, size_t> at;
    for (size_t i = 0; i < got.ids.size(); ++i) {
      at[got.ids[i]] = i;
    }
    std::vector<size_t> order;
    for (const auto& id : ids) {
      if (auto it = at.find(id); it != at.end()) {
        order.push_back(it->second);
      }
    }
    out = reorder(got, order);
  });
  return out;
}

int64_t PgvectorBackend::count(const std::string& dataset, const Filter* filter) {
  int64_t n = 0;
  tables();
  Session& s = m_reads.reader();
  s.read("counting rows of " + ctx(dataset), [&](pqxx::work&) {
    const CatalogEntry e = require_on(s, dataset);
    if (filter == nullptr || filter->empty()) {
      n = e.rows;
      return;
    }
    const SqlFilter f = translate_filter(filter, "metadata", 1, &e.spec);
    n = s.exec(fmt::format("SELECT count(*) FROM {} WHERE {}", s.quote(e.table), f.sql),
               std::vector<Param>(f.params.begin(), f.params.end()))
            .int_text(0, 0);
  });
  return n;
}

}  // namespace vstash::backends::pgvector
