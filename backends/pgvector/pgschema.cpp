// SPDX-License-Identifier: MIT
// Schema creation, versioning and the dataset catalog.
#include "backends/pgvector/pgschema.hpp"

#include <fmt/format.h>

#include "src/errors.hpp"

namespace vstash::backends::pgvector {

namespace {

using json = nlohmann::json;

constexpr size_t k_max_identifier = 63;  // PostgreSQL's NAMEDATALEN - 1
constexpr size_t k_longest_suffix = 18;  // "_checkpoint_arrays"
constexpr size_t k_hash_chars = 8;
constexpr size_t k_index_suffix = 4;  // "_ann"

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

Shape shape_from_json(const std::string& text) {
  Shape out;
  for (const auto& d : json::parse(text)) {
    out.push_back(d.get<int64_t>());
  }
  return out;
}

std::string shape_json(const Shape& s) { return json(s).dump(); }

CatalogEntry entry_from(const Result& r, int row) {
  CatalogEntry e;
  e.spec.name = r.text(row, 0);
  e.table = r.text(row, 1);
  e.spec.dtype = parse_dtype_name(r.text(row, 2));
  e.spec.row_shape = shape_from_json(r.text(row, 3));
  if (!r.is_null(row, 4)) {
    e.spec.label_dtype = parse_dtype_name(r.text(row, 4));
  }
  e.spec.label_shape = shape_from_json(r.text(row, 5));
  e.spec.metric = parse_metric(r.text(row, 6));
  e.spec.metadata = json::parse(r.get(row, 7));
  e.rows = r.int_text(row, 8);
  e.next_index = r.int_text(row, 9);
  return e;
}

constexpr const char* k_catalog_columns =
    "name, tbl, dtype, row_shape::text, label_dtype, label_shape::text, metric, metadata::text, live_rows, next_index";

}  // namespace

void check_prefix(const std::string& prefix) {
  if (prefix.empty() || prefix.size() + k_longest_suffix > k_max_identifier - 2 * k_hash_chars) {
    throw UsageError(fmt::format("pgvector: table_name \"{}\" must be 1 to {} bytes", prefix,
                                 k_max_identifier - 2 * k_hash_chars - k_longest_suffix));
  }
}

Tables table_names(Session& s, const std::string& prefix) {
  Tables t;
  t.prefix = prefix;
  t.meta = s.quote(prefix + "_meta");
  t.datasets = s.quote(prefix + "_datasets");
  t.checkpoints = s.quote(prefix + "_checkpoints");
  t.arrays = s.quote(prefix + "_checkpoint_arrays");
  t.latest = s.quote(prefix + "_latest");
  t.progress = s.quote(prefix + "_progress");
  return t;
}

std::string rows_table_name(const std::string& prefix, const std::string& dataset) {
  const size_t budget = k_max_identifier - prefix.size() - 2 - k_hash_chars - k_index_suffix;
  std::string base;
  for (unsigned char c : dataset) {
    if (base.size() >= budget) {
      break;
    }
    base += std::isalnum(c) ? static_cast<char>(std::tolower(c)) : '_';
  }
  return fmt::format("{}_{}_{:08x}", prefix, base, fnv1a(dataset) & 0xffffffffu);
}

std::string ann_index_name(const std::string& rows_table) { return rows_table + "_ann"; }

void ensure_schema(Session& s, const Tables& t) {
  const auto& db = s.settings().database;
  bool have_extension = false;
  s.run("checking the vector extension",
        [&] { have_extension = s.exec("SELECT 1 FROM pg_extension WHERE extname = 'vector'").rows() > 0; });
  if (!have_extension) {
    try {
      s.exec("CREATE EXTENSION IF NOT EXISTS vector");
    } catch (const ServerError& e) {
      if (e.sqlstate().empty() || e.sqlstate().substr(0, 2) == "08") {
        s.run("creating the vector extension", [] { throw; });
      }
      // Another process created it at the same moment: that is success.
      const bool raced = e.sqlstate() == "23505" || e.sqlstate() == "42710";
      if (!raced) {
        throw Error(
            fmt::format("{}: the vector extension is not installed in database \"{}\" and this user cannot "
                        "create it ({}); a superuser must run, in database \"{}\": CREATE EXTENSION vector;",
                        s.location(), db, s.scrub(e.what()), db));
      }
    }
  }
  s.transact("creating the vstash tables", [&](pqxx::work&) {
    // One creator at a time per prefix; the others wait and then see the tables.
    s.exec("SELECT pg_advisory_xact_lock(hashtext($1))", {Param("vstash:" + t.prefix)});
    s.exec(fmt::format("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value text NOT NULL)", t.meta));
    const Result v = s.exec(fmt::format("SELECT value FROM {} WHERE key = 'layout_version'", t.meta));
    if (v.rows() > 0) {
      const int64_t found = v.int_text(0, 0);
      if (found > k_layout_version) {
        throw Error(
            fmt::format("{}: tables \"{}_*\" use layout version {}, newer than this vstash understands "
                        "({}); upgrade vstash",
                        s.location(), t.prefix, found, k_layout_version));
      }
      return;
    }
    s.exec(fmt::format(
        "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, tbl text NOT NULL UNIQUE, dtype text NOT NULL, "
        "row_shape jsonb NOT NULL, dim integer NOT NULL, label_dtype text, label_shape jsonb NOT NULL, "
        "metric text NOT NULL, metadata jsonb NOT NULL DEFAULT '{{}}', live_rows bigint NOT NULL DEFAULT 0, "
        "next_index bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now())",
        t.datasets));
    s.exec(fmt::format(
        "CREATE TABLE IF NOT EXISTS {} (model text NOT NULL, epoch bigint NOT NULL, metrics jsonb NOT NULL, "
        "metadata jsonb NOT NULL, created_at text NOT NULL, bytes bigint NOT NULL, PRIMARY KEY (model, epoch))",
        t.checkpoints));
    s.exec(
        fmt::format("CREATE TABLE IF NOT EXISTS {} (model text NOT NULL, epoch bigint NOT NULL, name text NOT NULL, "
                    "dtype text NOT NULL, shape jsonb NOT NULL, data bytea NOT NULL, PRIMARY KEY (model, epoch, name), "
                    "FOREIGN KEY (model, epoch) REFERENCES {} (model, epoch) ON DELETE CASCADE)",
                    t.arrays, t.checkpoints));
    s.exec(fmt::format("CREATE TABLE IF NOT EXISTS {} (model text PRIMARY KEY, epoch bigint NOT NULL)", t.latest));
    s.exec(
        fmt::format("CREATE TABLE IF NOT EXISTS {} (run text NOT NULL, rank bigint NOT NULL, epoch bigint NOT NULL, "
                    "step bigint NOT NULL, metrics jsonb NOT NULL, updated_at text NOT NULL, PRIMARY KEY (run, rank))",
                    t.progress));
    s.exec(fmt::format("INSERT INTO {} (key, value) VALUES ('layout_version', $1)", t.meta),
           {Param(int64_t{k_layout_version})});
  });
}

std::optional<CatalogEntry> read_catalog(Session& s, const Tables& t, const std::string& dataset, bool for_update) {
  const Result r = s.exec(fmt::format("SELECT {} FROM {} WHERE name = $1{}", k_catalog_columns, t.datasets,
                                      for_update ? " FOR UPDATE" : ""),
                          {Param(dataset)});
  if (r.rows() == 0) {
    return std::nullopt;
  }
  return entry_from(r, 0);
}

std::vector<CatalogEntry> read_catalog_all(Session& s, const Tables& t) {
  const Result r = s.exec(fmt::format("SELECT {} FROM {} ORDER BY name", k_catalog_columns, t.datasets));
  std::vector<CatalogEntry> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(entry_from(r, i));
  }
  return out;
}

void create_catalog_entry(Session& s, const Tables& t, const DatasetSpec& spec) {
  const std::string table = rows_table_name(t.prefix, spec.name);
  s.exec(fmt::format("INSERT INTO {} (name, tbl, dtype, row_shape, dim, label_dtype, label_shape, metric, metadata) "
                     "VALUES ($1, $2, $3, $4::jsonb, $5::integer, $6, $7::jsonb, $8, $9::jsonb)",
                     t.datasets),
         {Param(spec.name), Param(table), Param(std::string(dtype_name(spec.dtype))), Param(shape_json(spec.row_shape)),
          Param(spec.dimension()), spec.label_dtype ? Param(std::string(dtype_name(*spec.label_dtype))) : Param(),
          Param(shape_json(spec.label_shape)), Param(std::string(metric_name(spec.metric))),
          Param(spec.metadata.is_object() ? spec.metadata.dump() : std::string("{}"))});
  s.exec(
      fmt::format("CREATE TABLE {} (id text PRIMARY KEY, idx bigint NOT NULL UNIQUE, embedding vector({}) "
                  "NOT NULL, sample bytea, label bytea, metadata jsonb)",
                  s.quote(table), spec.dimension()));
  // pgvector's type stores vectors out of line (TOAST) once a row passes ~2 kB, i.e. from
  // about 500 dimensions: every row then costs a second heap tuple and a TOAST index entry,
  // and every exact scan a detoast. Up to k_inline_dimensions the vector (4 kB) is kept in
  // the row instead; the other columns stay TOAST-able, so a row always fits a page.
  if (spec.dimension() <= k_inline_dimensions) {
    s.exec(fmt::format("ALTER TABLE {} ALTER COLUMN embedding SET STORAGE PLAIN", s.quote(table)));
  }
}

std::string describe_spec(const DatasetSpec& spec) {
  std::string out = fmt::format("{} {}", dtype_name(spec.dtype), shape_to_string(spec.row_shape));
  if (spec.label_dtype) {
    out += fmt::format(" labels {} {}", dtype_name(*spec.label_dtype), shape_to_string(spec.label_shape));
  }
  return out + fmt::format(" {}", metric_name(spec.metric));
}

bool specs_compatible(const DatasetSpec& a, const DatasetSpec& b) {
  return a.dtype == b.dtype && a.row_shape == b.row_shape && a.label_dtype == b.label_dtype &&
         (!a.label_dtype || a.label_shape == b.label_shape) && a.metric == b.metric;
}

}  // namespace vstash::backends::pgvector
