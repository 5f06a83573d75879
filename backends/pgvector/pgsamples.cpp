// SPDX-License-Identifier: MIT
// A streamed batch's samples and labels in one round trip (pgsamples.hpp).
#include "backends/pgvector/pgsamples.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "src/errors.hpp"

namespace vstash::backends::pgvector {

namespace {

// The rows' values, and in the same snapshot the catalog's word that they are the dataset's:
// an uncorrelated EXISTS, which PostgreSQL evaluates once before reading any row.
std::string samples_sql(Session& s, const std::string& catalog_table, const CatalogEntry& known) {
  return fmt::format(
      "SELECT idx, CASE WHEN sample IS NULL THEN embedding END, sample, label FROM {} WHERE idx = ANY($1::bigint[]) "
      "AND EXISTS (SELECT 1 FROM {} WHERE name = $2 AND tbl = $3 AND dtype = $4 AND row_shape = $5::jsonb AND "
      "label_dtype IS NOT DISTINCT FROM $6 AND label_shape = $7::jsonb AND live_rows = next_index AND "
      "live_rows > $8::bigint)",
      s.quote(known.table), catalog_table);
}

std::vector<Param> samples_params(const CatalogEntry& e, const std::vector<int64_t>& positions) {
  const DatasetSpec& spec = e.spec;
  return {Param(fmt::format("{{{}}}", fmt::join(positions, ","))),
          Param(spec.name),
          Param(e.table),
          Param(std::string(dtype_name(spec.dtype))),
          Param(nlohmann::json(spec.row_shape).dump()),
          spec.label_dtype ? Param(std::string(dtype_name(*spec.label_dtype))) : Param(),
          Param(nlohmann::json(spec.label_shape).dump()),
          Param(*std::max_element(positions.begin(), positions.end()))};
}

// The statement prepared once per connection: an epoch sends it hundreds of times, and
// parsing and planning it again each time costs about a fifth of its execution. The names
// prepared on each connection are remembered here; a connection that lost them (a reconnect
// at the same address) says so with SQLSTATE 26000 and the statement is prepared again.
Result exec_prepared(Session& s, const std::string& sql, const std::vector<Param>& params) {
  thread_local std::map<PGconn*, std::set<std::string>> prepared;
  PGconn* c = s.raw();
  const std::string name = fmt::format("vstash_samples_{:016x}", std::hash<std::string>()(sql));
  std::vector<const char*> values;
  std::vector<int> lengths;
  for (const auto& p : params) {
    values.push_back(p.value ? p.value->data() : nullptr);
    lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
  }
  const std::vector<int> formats(params.size(), 0);
  for (int attempt = 0;; ++attempt) {
    auto& names = prepared[c];
    if (names.count(name) == 0) {
      Result made(PQprepare(c, name.c_str(), sql.c_str(), static_cast<int>(params.size()), nullptr));
      const char* state = made.raw() ? PQresultErrorField(made.raw(), PG_DIAG_SQLSTATE) : nullptr;
      // 42P05: already prepared on this connection (the remembered names were lost).
      if (PQresultStatus(made.raw()) != PGRES_COMMAND_OK && (state == nullptr || std::string(state) != "42P05")) {
        throw ServerError(state ? state : "", made.raw() ? PQresultErrorMessage(made.raw()) : PQerrorMessage(c));
      }
      names.insert(name);
    }
    Result res(PQexecPrepared(c, name.c_str(), static_cast<int>(params.size()), values.data(), lengths.data(),
                              formats.data(), 1));
    if (PQresultStatus(res.raw()) == PGRES_TUPLES_OK) {
      return res;
    }
    const char* state = res.raw() ? PQresultErrorField(res.raw(), PG_DIAG_SQLSTATE) : nullptr;
    if (attempt == 0 && state != nullptr && std::string(state) == "26000") {
      names.erase(name);
      continue;
    }
    throw ServerError(state ? state : "", res.raw() ? PQresultErrorMessage(res.raw()) : PQerrorMessage(c));
  }
}

// The batch to fill, and which of its rows each position goes to (a position may repeat).
struct Slots {
  RowBatch batch;
  std::vector<std::pair<int64_t, size_t>> by_position;  // sorted
};

Slots empty_batch(const DatasetSpec& spec, const std::vector<int64_t>& positions) {
  Slots out;
  const auto n = static_cast<int64_t>(positions.size());
  Shape shape{n};
  shape.insert(shape.end(), spec.row_shape.begin(), spec.row_shape.end());
  out.batch.data = Array(spec.dtype, shape);
  if (spec.label_dtype) {
    Shape ls{n};
    ls.insert(ls.end(), spec.label_shape.begin(), spec.label_shape.end());
    out.batch.labels = Array(*spec.label_dtype, ls);
  }
  out.batch.ids.resize(positions.size());
  out.batch.indices = positions;
  out.by_position.reserve(positions.size());
  for (size_t i = 0; i < positions.size(); ++i) {
    out.by_position.emplace_back(positions[i], i);
  }
  std::sort(out.by_position.begin(), out.by_position.end());
  return out;
}

// Row i of the result into batch row `to`: the sample (bytea) or the vector, and the label.
void copy_row(Session& s, const CatalogEntry& e, const Result& r, int i, RowBatch& b, int64_t to) {
  const int64_t index = r.int8(i, 0);
  auto dst = b.data.row(to);
  if (!r.is_null(i, 2)) {
    const auto raw = r.get(i, 2);
    if (raw.size() != dst.size()) {
      throw Error(fmt::format("{}: dataset \"{}\": row at index {}: stored sample has {} bytes, expected {}",
                              s.location(), e.spec.name, index, raw.size(), dst.size()));
    }
    std::memcpy(dst.data(), raw.data(), dst.size());
  } else if (dst.size() % 4 != 0 ||
             !decode_vector_into(r.get(i, 1), reinterpret_cast<float*>(dst.data()), dst.size() / 4)) {
    throw Error(fmt::format("{}: dataset \"{}\": row at index {}: stored vector is not {} bytes of float32",
                            s.location(), e.spec.name, index, dst.size()));
  }
  if (b.labels) {
    auto ldst = b.labels->row(to);
    const auto raw = r.is_null(i, 3) ? std::string_view() : r.get(i, 3);
    if (raw.size() != ldst.size()) {
      throw Error(fmt::format("{}: dataset \"{}\": row at index {}: stored label has {} bytes, expected {}",
                              s.location(), e.spec.name, index, raw.size(), ldst.size()));
    }
    std::memcpy(ldst.data(), raw.data(), ldst.size());
  }
}

}  // namespace

bool decode_vector_into(std::string_view wire, float* dst, size_t dim) {
  if (wire.size() < 4) {
    return false;
  }
  const size_t got =
      (static_cast<size_t>(static_cast<unsigned char>(wire[0])) << 8) | static_cast<unsigned char>(wire[1]);
  if (got != dim || wire.size() != 4 + 4 * dim) {
    return false;
  }
  const char* in = wire.data() + 4;
  auto* out = reinterpret_cast<std::byte*>(dst);
  for (size_t i = 0; i < dim; ++i) {
    uint32_t u = 0;
    std::memcpy(&u, in + 4 * i, 4);
    u = __builtin_bswap32(u);
    std::memcpy(out + 4 * i, &u, 4);
  }
  return true;
}

std::optional<RowBatch> read_samples_once(Session& s, const std::string& catalog_table, const CatalogEntry& known,
                                          const std::vector<int64_t>& positions) {
  if (positions.empty() || *std::min_element(positions.begin(), positions.end()) < 0) {
    return std::nullopt;
  }
  std::optional<Result> r;
  try {
    r.emplace(exec_prepared(s, samples_sql(s, catalog_table, known), samples_params(known, positions)));
  } catch (const ServerError& e) {
    if (e.sqlstate() == "42P01") {  // undefined_table: the dataset was dropped
      return std::nullopt;
    }
    throw;
  }
  Slots slots = empty_batch(known.spec, positions);
  size_t filled = 0;
  for (int i = 0; i < r->rows(); ++i) {
    const int64_t index = r->int8(i, 0);
    auto at =
        std::lower_bound(slots.by_position.begin(), slots.by_position.end(), std::pair<int64_t, size_t>(index, 0));
    for (; at != slots.by_position.end() && at->first == index; ++at, ++filled) {
      copy_row(s, known, *r, i, slots.batch, static_cast<int64_t>(at->second));
    }
  }
  // No row at all: the catalog check failed. Fewer: a row went missing, which a dense dataset
  // cannot show; either way the transactional path decides.
  if (filled != positions.size()) {
    return std::nullopt;
  }
  return std::move(slots.batch);
}

}  // namespace vstash::backends::pgvector
