// SPDX-License-Identifier: MIT
// `vstash query`: nearest neighbours of one vector, or of every row of a queries file
// (streamed as NDJSON, one line per query).
#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <memory>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct QueryOptions {
  std::string vector;
  std::string vector_file;
  std::string queries;
  int64_t k = 10;
  std::string filter;
  bool include_values = false;
  bool no_metadata = false;
  bool exact = false;
  int64_t ef = 0;  // 0: the store's default
};

namespace {

nlohmann::json hits_json(const std::vector<backends::QueryHit>& hits, const QueryOptions& opt) {
  auto arr = nlohmann::json::array();
  for (const auto& h : hits) {
    nlohmann::json j = {{"id", h.id}, {"index", h.index}, {"score", h.score}};
    if (!opt.no_metadata) {
      j["metadata"] = h.metadata;
    }
    if (opt.include_values && h.values) {
      j["values"] = *h.values;
    }
    arr.push_back(std::move(j));
  }
  return arr;
}

std::vector<float> to_query(const std::vector<double>& values, const backends::DatasetSpec& spec,
                            const std::string& what) {
  check_dimension(spec, values.size(), what);
  std::vector<float> out(values.begin(), values.end());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) {
      throw UsageError(fmt::format("{}: element {} is not finite", what, i));
    }
  }
  return out;
}

void run_query(const QueryOptions& opt, Context& ctx) {
  ctx.only_reads();
  const int given = !opt.vector.empty() + !opt.vector_file.empty() + !opt.queries.empty();
  if (given != 1) {
    throw UsageError("query: give exactly one of VECTOR, --vector-file or --queries");
  }
  // Documented in man/vstash.1; hits are held in memory, and no server returns more.
  check_range("-k", opt.k, 1, 100000);
  if (opt.ef != 0) {
    check_range("--ef", opt.ef, 1, 100000);
  }
  std::optional<Filter> filter;
  if (!opt.filter.empty()) {
    filter = parse_filter_arg(opt.filter);
  }
  const std::string dataset = ctx.dataset();
  auto& backend = ctx.backend();
  const auto info = require_dataset(backend, dataset);
  backends::QueryOptions qo;
  qo.top_k = opt.k;
  qo.filter = filter ? &*filter : nullptr;
  qo.include_values = opt.include_values;
  qo.include_metadata = !opt.no_metadata;
  qo.exact = opt.exact;
  if (opt.ef != 0) {
    qo.ef = static_cast<int>(opt.ef);
  }

  if (!opt.queries.empty()) {
    const Array q = io::read_array(opt.queries);
    if (q.ndim() != 2) {
      throw UsageError(
          fmt::format("{}: --queries needs a 2-D array, got shape {}", opt.queries, shape_to_string(q.shape())));
    }
    check_dimension(info.spec, static_cast<size_t>(q.shape()[1]), opt.queries);
    // Queries go to the store in chunks (one scan of the dataset per chunk on the stores that
    // scan), small enough that chunk x k hits stay bounded; lines stream in query order.
    const int64_t chunk = std::clamp<int64_t>((int64_t{1} << 20) / opt.k, 1, 1024);
    for (int64_t first = 0; first < q.rows(); first += chunk) {
      check_interrupted();
      const int64_t n = std::min(chunk, q.rows() - first);
      std::vector<float> block;
      for (int64_t i = first; i < first + n; ++i) {
        const auto row = q.row_as_float32(i);
        const auto v = to_query({row.begin(), row.end()}, info.spec, fmt::format("{}: row {}", opt.queries, i));
        block.insert(block.end(), v.begin(), v.end());
      }
      const auto results = backend.query_many(dataset, block, static_cast<size_t>(n), qo);
      for (int64_t i = 0; i < n; ++i) {
        output::print_ndjson({{"query", first + i}, {"hits", hits_json(results.at(static_cast<size_t>(i)), opt)}});
      }
    }
    return;
  }
  const auto values = opt.vector.empty() ? read_vector_file(opt.vector_file) : parse_vector_arg(opt.vector, "VECTOR");
  const auto hits =
      backend.query(dataset, to_query(values, info.spec, opt.vector.empty() ? opt.vector_file : "VECTOR"), qo);
  if (ctx.json()) {
    output::print_json({{"dataset", dataset},
                        {"k", opt.k},
                        {"metric", std::string(backends::metric_name(info.spec.metric))},
                        {"hits", hits_json(hits, opt)}});
    return;
  }
  output::TextTable table({"rank", "id", "score", "metadata"}, {true, false, true, false});
  for (size_t i = 0; i < hits.size(); ++i) {
    table.add_row({std::to_string(i + 1), hits[i].id, fmt::format("{:.6g}", hits[i].score),
                   opt.no_metadata ? "" : output::cell_json(hits[i].metadata)});
  }
  output::print_text(table.render());
}

}  // namespace

void register_query(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<QueryOptions>();
  auto* sub = parent.add_subcommand("query", "Find the nearest rows to a vector");
  sub->add_option("VECTOR", opt->vector, "Query vector as JSON, e.g. '[0.1,0.2]'");
  sub->add_option("--vector-file", opt->vector_file, "Query vector from an NPY/HDF5 file");
  sub->add_option("--queries", opt->queries, "2-D NPY/HDF5 array: one NDJSON result line per row");
  sub->add_option("-k,--top-k", opt->k, "Number of results (default 10)")->envname("VSTASH_K");
  sub->add_option("--filter", opt->filter, "Metadata filter as JSON or @FILE.json")->envname("VSTASH_FILTER");
  sub->add_flag("--include-values", opt->include_values, "Include each hit's vector");
  sub->add_flag("--no-metadata", opt->no_metadata, "Leave metadata out");
  sub->add_flag("--exact", opt->exact, "Exact scan, no approximate index (not on pinecone)");
  sub->add_option("--ef", opt->ef, "HNSW search breadth (local, pgvector, qdrant; default: the profile's)");
  sub->callback([opt, &ctx] { run_query(*opt, ctx); });
}

}  // namespace vstash::commands
