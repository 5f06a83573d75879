// SPDX-License-Identifier: MIT
#include "backends/pgvector/pgdatasets.hpp"

#include <fmt/format.h>

#include "backends/pgvector/pgcitus.hpp"

namespace vstash::backends::pgvector {

namespace {

using json = nlohmann::json;

Shape shape_from_json(const std::string& text) {
  Shape out;
  for (const auto& d : json::parse(text)) {
    out.push_back(d.get<int64_t>());
  }
  return out;
}

std::string shape_json(const Shape& s) { return json(s).dump(); }

constexpr const char* k_catalog_columns =
    "name, tbl, dtype, row_shape::text, label_dtype, label_shape::text, metric, metadata::text, live_rows, next_index, "
    "xmin::text";

catalog::DatasetRecord record_from(const Result& r, int row) {
  catalog::DatasetRecord e;
  e.spec.name = r.text(row, 0);
  e.extra["table"] = r.text(row, 1);
  e.spec.dtype = parse_dtype_name(r.text(row, 2));
  e.spec.row_shape = shape_from_json(r.text(row, 3));
  if (!r.is_null(row, 4)) {
    e.spec.label_dtype = parse_dtype_name(r.text(row, 4));
  }
  e.spec.label_shape = shape_from_json(r.text(row, 5));
  e.spec.metric = parse_metric(r.text(row, 6));
  e.spec.metadata = json::parse(r.get(row, 7));
  e.extra["rows"] = r.int_text(row, 8);
  e.next_index = r.int_text(row, 9);
  e.version = r.text(row, 10);
  return e;
}

}  // namespace

CatalogEntry entry_of(const catalog::DatasetRecord& record) {
  CatalogEntry e;
  e.spec = record.spec;
  e.table = record.extra.value("table", std::string());
  e.rows = record.extra.value("rows", int64_t{0});
  e.next_index = record.next_index;
  return e;
}

std::optional<catalog::DatasetRecord> PgDatasetRecords::get(const std::string& name) {
  const Result r = m_session.exec(fmt::format("SELECT {} FROM {} WHERE name = $1{}", k_catalog_columns,
                                              m_tables.datasets, m_lock ? " FOR UPDATE" : ""),
                                  {Param(name)});
  if (r.rows() == 0) {
    return std::nullopt;
  }
  return record_from(r, 0);
}

std::vector<catalog::DatasetRecord> PgDatasetRecords::list() {
  const Result r = m_session.exec(fmt::format("SELECT {} FROM {} ORDER BY name", k_catalog_columns, m_tables.datasets));
  std::vector<catalog::DatasetRecord> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(record_from(r, i));
  }
  return out;
}

bool PgDatasetRecords::insert(const catalog::DatasetRecord& record) {
  const DatasetSpec& spec = record.spec;
  const std::string table = rows_table_name(m_tables.prefix, spec.name);
  const Result r = m_session.exec(
      fmt::format("INSERT INTO {} (name, tbl, dtype, row_shape, dim, label_dtype, label_shape, metric, metadata, "
                  "next_index) VALUES ($1, $2, $3, $4::jsonb, $5::integer, $6, $7::jsonb, $8, $9::jsonb, $10::bigint) "
                  "ON CONFLICT (name) DO NOTHING RETURNING 1",
                  m_tables.datasets),
      {Param(spec.name), Param(table), Param(std::string(dtype_name(spec.dtype))), Param(shape_json(spec.row_shape)),
       Param(spec.dimension()), spec.label_dtype ? Param(std::string(dtype_name(*spec.label_dtype))) : Param(),
       Param(shape_json(spec.label_shape)), Param(std::string(metric_name(spec.metric))),
       Param(spec.metadata.is_object() ? spec.metadata.dump() : std::string("{}")), Param(record.next_index)});
  if (r.rows() == 0) {
    return false;
  }
  for (const Statement& st : rows_table_statements(m_session, table, spec.dimension(), m_tables.citus)) {
    m_session.exec(st.sql, std::vector<Param>(st.params.begin(), st.params.end()));
  }
  return true;
}

bool PgDatasetRecords::compare_and_set(const catalog::DatasetRecord& seen, const catalog::DatasetRecord& next) {
  const json& metadata = next.spec.metadata;
  const Result r = m_session.exec(
      fmt::format("UPDATE {} SET metadata = $2::jsonb, next_index = $3::bigint WHERE name = $1 AND xmin::text = $4 "
                  "RETURNING 1",
                  m_tables.datasets),
      {Param(seen.spec.name), Param(metadata.is_object() ? metadata.dump() : std::string("{}")), Param(next.next_index),
       Param(seen.version)});
  return r.rows() > 0;
}

bool PgDatasetRecords::remove(const std::string& name) {
  const Result r =
      m_session.exec(fmt::format("DELETE FROM {} WHERE name = $1 RETURNING tbl", m_tables.datasets), {Param(name)});
  if (r.rows() == 0) {
    return false;
  }
  m_session.exec("DROP TABLE IF EXISTS " + m_session.quote(r.text(0, 0)));
  return true;
}

}  // namespace vstash::backends::pgvector
