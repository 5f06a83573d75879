// SPDX-License-Identifier: MIT
// Changing stored rows: update one row's sample or metadata, delete rows by id or by filter.
#include "backends/pgvector/pgvectorstore.hpp"

#include <fmt/format.h>

#include "backends/common/rowcheck.hpp"
#include "backends/pgvector/pgfilter.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pgvector {

void PgvectorBackend::update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                                 const std::optional<json>& metadata) {
  note_write();
  tables();
  m_session.transact("updating row \"" + id + "\" of " + ctx(dataset), [&](pqxx::work&) {
    const CatalogEntry e = require(dataset);
    std::vector<Param> params{Param(id)};
    std::vector<std::string> sets;
    if (sample) {
      Shape with_batch{1};
      with_batch.insert(with_batch.end(), e.spec.row_shape.begin(), e.spec.row_shape.end());
      if (sample->dtype() != e.spec.dtype || (sample->shape() != e.spec.row_shape && sample->shape() != with_batch)) {
        throw UsageError(fmt::format("dataset \"{}\": row \"{}\": sample must be {} of shape {}, got {} of shape {}",
                                     dataset, id, dtype_name(e.spec.dtype), shape_to_string(e.spec.row_shape),
                                     dtype_name(sample->dtype()), shape_to_string(sample->shape())));
      }
      check_finite(*sample, {id}, dataset);
      const Array f = sample->to_float32();
      params.emplace_back(vector_literal(std::vector<float>(f.as<float>(), f.as<float>() + f.size())));
      sets.push_back(fmt::format("embedding = ${}::vector", params.size()));
      if (e.spec.dtype != DType::f32) {
        params.push_back(Param::bytes(std::string(reinterpret_cast<const char*>(sample->data()), sample->nbytes())));
        sets.push_back(fmt::format("sample = ${}::bytea", params.size()));
      }
    }
    if (metadata) {
      if (!metadata->is_object()) {
        throw UsageError(fmt::format("dataset \"{}\": row \"{}\": metadata must be a JSON object", dataset, id));
      }
      json removed = json::array();
      for (const auto& [k, v] : metadata->items()) {
        if (v.is_null()) {
          removed.push_back(k);
        }
      }
      params.emplace_back(metadata->dump());
      params.emplace_back(removed.dump());
      sets.push_back(
          fmt::format("metadata = (COALESCE(metadata, '{{}}'::jsonb) || jsonb_strip_nulls(${}::jsonb)) - "
                      "ARRAY(SELECT jsonb_array_elements_text(${}::jsonb))",
                      params.size() - 1, params.size()));
    }
    const std::string set_list = sets.empty() ? "id = id" : fmt::format("{}", fmt::join(sets, ", "));
    const Result r = m_session.exec(
        fmt::format("UPDATE {} SET {} WHERE id = $1 RETURNING 1", m_session.quote(e.table), set_list), params);
    if (r.rows() == 0) {
      throw NotFoundError(fmt::format("{}: dataset \"{}\": no row with id \"{}\"", m_session.location(), dataset, id));
    }
  });
}

int64_t PgvectorBackend::delete_matching(const std::string& dataset, const std::string& what,
                                         const std::function<std::pair<std::string, std::vector<Param>>()>& where) {
  int64_t n = 0;
  note_write();
  const Tables& t = tables();
  m_session.transact(what + " of " + ctx(dataset), [&](pqxx::work&) {
    const CatalogEntry e = require(dataset, true);
    auto [cond, params] = where();
    const Result r =
        m_session.exec(fmt::format("WITH d AS (DELETE FROM {} WHERE {} RETURNING 1) SELECT count(*) FROM d",
                                   m_session.quote(e.table), cond),
                       params);
    n = r.int_text(0, 0);
    m_session.exec(fmt::format("UPDATE {} SET live_rows = live_rows - $2::bigint WHERE name = $1", t.datasets),
                   {Param(dataset), Param(n)});
  });
  return n;
}

int64_t PgvectorBackend::delete_ids(const std::string& dataset, const std::vector<std::string>& ids) {
  return delete_matching(dataset, "deleting rows", [&] {
    return std::pair{std::string("id IN (SELECT jsonb_array_elements_text($1::jsonb))"),
                     std::vector<Param>{Param(ids_json(ids))}};
  });
}

int64_t PgvectorBackend::delete_where(const std::string& dataset, const Filter& filter) {
  return delete_matching(dataset, "deleting matching rows", [&] {
    const CatalogEntry e = require(dataset);
    const SqlFilter f = translate_filter(&filter, "metadata", 1, &e.spec);
    return std::pair{f.sql, std::vector<Param>(f.params.begin(), f.params.end())};
  });
}

}  // namespace vstash::backends::pgvector
