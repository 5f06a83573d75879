// SPDX-License-Identifier: MIT
// Nearest-neighbour queries: exact (a sorted scan) or through the ANN index (pgindex.cpp).
#include "backends/pgvector/pgvectorstore.hpp"

#include <fmt/format.h>
#include <cmath>
#include <cstring>

#include "backends/pgvector/pgfilter.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pgvector {

namespace {

double float8(std::string_view wire) {
  uint64_t u = 0;
  for (size_t i = 0; i < 8; ++i) {
    u = (u << 8) | static_cast<unsigned char>(wire[i]);
  }
  double d = 0;
  std::memcpy(&d, &u, 8);
  return d;
}

const char* distance_operator(Metric m) {
  switch (m) {
    case Metric::cosine:
      return "<=>";
    case Metric::euclidean:
      return "<->";
    case Metric::dot:
      return "<#>";
  }
  return "<=>";
}

// Shared definitions (backend.hpp): cosine similarity, L2 distance, inner product.
double score_from_distance(Metric m, double d) {
  if (std::isnan(d)) {
    return 0;  // pgvector's cosine distance to a zero vector; exact_score says 0
  }
  switch (m) {
    case Metric::cosine:
      return 1.0 - d;
    case Metric::euclidean:
      return d;
    case Metric::dot:
      return -d;
  }
  return d;
}

}  // namespace

void PgvectorBackend::set_search_parameters(Session& s, const CatalogEntry& e, const QueryOptions& options, bool ann) {
  const bool filtered = options.filter != nullptr && !options.filter->empty();
  if (!ann) {
    s.exec("SELECT set_config('enable_indexscan', 'off', true)");
  } else if (m_index.kind == IndexKind::hnsw) {
    s.exec("SELECT set_config('hnsw.ef_search', $1, true)",
           {Param(std::max<int64_t>(options.ef.value_or(m_index.ef_search), std::min<int64_t>(options.top_k, 1000)))});
    if (filtered) {
      s.exec("SELECT set_config('hnsw.iterative_scan', 'strict_order', true)");
    }
  } else if (ann) {
    // --ef reads as ivfflat's probes: how much of the index a search visits.
    const int64_t probes = options.ef ? *options.ef
                           : m_index.probes > 0
                               ? m_index.probes
                               : std::max<int64_t>(1, std::lround(std::sqrt(static_cast<double>(lists_for(e.rows)))));
    s.exec("SELECT set_config('ivfflat.probes', $1, true)", {Param(probes)});
    if (filtered) {
      s.exec("SELECT set_config('ivfflat.iterative_scan', 'relaxed_order', true)");
    }
  }
}

std::vector<QueryHit> PgvectorBackend::query(const std::string& dataset, const std::vector<float>& vector,
                                             const QueryOptions& options) {
  tables();
  Session& s = m_reads.reader();
  const CatalogEntry e = [&] {
    CatalogEntry out;
    s.read("querying " + ctx(dataset), [&](pqxx::work&) { out = require_on(s, dataset); });
    return out;
  }();
  if (static_cast<int64_t>(vector.size()) != e.spec.dimension()) {
    throw UsageError(fmt::format("dataset \"{}\": query vector has {} dimensions, the dataset {}", dataset,
                                 vector.size(), e.spec.dimension()));
  }
  for (float f : vector) {
    if (!std::isfinite(f)) {
      throw UsageError(fmt::format("dataset \"{}\": query vector holds NaN or Inf", dataset));
    }
  }
  std::vector<QueryHit> hits;
  if (options.top_k <= 0) {
    return hits;
  }
  if (options.ef && *options.ef > 1000) {
    throw UsageError(
        fmt::format("--ef: pgvector searches at most 1000 candidates (hnsw.ef_search), got {}", *options.ef));
  }
  // --exact: no index scan (the plain query's ORDER BY dist, idx cannot use one either).
  const bool ann = !options.exact && ensure_index(e);
  s.read("querying " + ctx(dataset), [&](pqxx::work&) {
    hits.clear();  // read() may run this twice
    set_search_parameters(s, e, options, ann);
    const SqlFilter f = translate_filter(options.filter, "metadata", 3, &e.spec);
    const std::string op = distance_operator(e.spec.metric);
    const std::string cols = fmt::format("id, idx, (embedding {} $1::vector)::float8 AS dist, {}, {}", op,
                                         options.include_values ? "embedding" : "NULL::vector",
                                         options.include_metadata ? "metadata::text" : "NULL::text");
    const std::string table = s.quote(e.table);
    // An index scan orders by the distance alone; the outer sort adds the idx tie-break.
    const std::string sql =
        ann ? fmt::format(
                  "SELECT * FROM (SELECT {} FROM {} WHERE {} ORDER BY embedding {} $1::vector LIMIT $2::bigint) "
                  "s ORDER BY dist, idx",
                  cols, table, f.sql, op)
            : fmt::format("SELECT {} FROM {} WHERE {} ORDER BY dist, idx LIMIT $2::bigint", cols, table, f.sql);
    std::vector<Param> params{Param(vector_literal(vector)), Param(options.top_k)};
    params.insert(params.end(), f.params.begin(), f.params.end());
    const Result r = s.exec(sql, params, true);
    for (int i = 0; i < r.rows(); ++i) {
      QueryHit h;
      h.id = r.text(i, 0);
      h.index = r.int8(i, 1);
      h.score = score_from_distance(e.spec.metric, float8(r.get(i, 2)));
      if (options.include_values) {
        h.values = decode_vector(r.get(i, 3));
      }
      if (options.include_metadata) {
        h.metadata = r.is_null(i, 4) ? json(nullptr) : json::parse(r.get(i, 4));
      }
      hits.push_back(std::move(h));
    }
  });
  return hits;
}

}  // namespace vstash::backends::pgvector
