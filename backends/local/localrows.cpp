// SPDX-License-Identifier: MIT
// Row storage of the local store: upsert, update, delete, filtered scans and exact query.
#include <cmath>
#include <cstring>
#include <fmt/format.h>

#include "../../src/errors.hpp"
#include "../common/rowcheck.hpp"
#include "../common/blockscan.hpp"
#include "../common/scoring.hpp"
#include "localstore.hpp"

namespace vstash::backends::local {

namespace {

// Bytes a row occupies: length() of TEXT counts characters, so metadata is measured as a blob.
#define VSTASH_ROW_SIZE "length(data) + ifnull(length(label), 0) + ifnull(length(CAST(metadata AS BLOB)), 0)"

json metadata_at(const Stmt& s, int col) { return s.is_null(col) ? json(nullptr) : json::parse(s.text_at(col)); }

// Converts n elements of dtype t to float32 (the vector that queries score).
void to_float32(DType t, const std::byte* p, size_t n, float* out) {
  auto convert = [&]<class T>(T) {
    for (size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, p + i * sizeof(T), sizeof(T));
      out[i] = static_cast<float>(v);
    }
  };
  switch (t) {
    case DType::f32: std::memcpy(out, p, n * sizeof(float)); return;
    case DType::f16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + i * 2, 2);
        out[i] = half_to_float(h);
      }
      return;
    case DType::f64: convert(double{}); return;
    case DType::i8: convert(int8_t{}); return;
    case DType::i16: convert(int16_t{}); return;
    case DType::i32: convert(int32_t{}); return;
    case DType::i64: convert(int64_t{}); return;
    case DType::u8: convert(uint8_t{}); return;
    case DType::u16: convert(uint16_t{}); return;
    case DType::u32: convert(uint32_t{}); return;
    case DType::u64: convert(uint64_t{}); return;
    case DType::b1:
      for (size_t i = 0; i < n; ++i) {
        out[i] = std::to_integer<int>(p[i]) != 0 ? 1.0f : 0.0f;
      }
      return;
  }
}

// A replacement sample as one row of the dataset's dtype. Accepts the row shape or
// {1, row shape...}; a sample of another dtype is converted only into a float dataset.
Array sample_row(const DatasetSpec& spec, const Array& sample, const std::string& id) {
  Shape one = spec.row_shape;
  one.insert(one.begin(), 1);
  if (sample.shape() != spec.row_shape && sample.shape() != one) {
    throw UsageError(fmt::format("dataset \"{}\": row \"{}\": sample of shape {} does not fit rows of shape {}",
                                 spec.name, id, shape_to_string(sample.shape()), shape_to_string(spec.row_shape)));
  }
  const std::vector<std::string> ids{id};
  Array src(sample.dtype(), one, std::vector<std::byte>(sample.bytes().begin(), sample.bytes().end()));
  check_finite(src, ids, spec.name);
  if (src.dtype() == spec.dtype) {
    return src;
  }
  if (!dtype_is_float(spec.dtype)) {
    throw UsageError(fmt::format("dataset \"{}\": row \"{}\": sample is {} but the dataset holds {}", spec.name, id,
                                 dtype_name(src.dtype()), dtype_name(spec.dtype)));
  }
  Array out(spec.dtype, one);
  for (int64_t i = 0; i < src.size(); ++i) {
    const double v = src.element_as_double(i);
    if (spec.dtype == DType::f16) {
      out.as<uint16_t>()[i] = float_to_half(static_cast<float>(v));
    } else if (spec.dtype == DType::f32) {
      out.as<float>()[i] = static_cast<float>(v);
    } else {
      out.as<double>()[i] = v;
    }
  }
  return out;
}

}  // namespace

void save_counters(Connection& conn, int64_t dataset_id, const RowCounters& k) {
  conn.prepare(
          "UPDATE datasets SET next_index = ?1, row_count = ?2, row_bytes = ?3, version = version + 1 WHERE id = ?4")
      .bind(1, k.next_index)
      .bind(2, k.row_count)
      .bind(3, k.row_bytes)
      .bind(4, dataset_id)
      .run();
}

BatchBuilder::BatchBuilder(const DatasetSpec& spec)
    : m_spec(spec),
      m_row_bytes(static_cast<size_t>(spec.dimension()) * dtype_size(spec.dtype)),
      m_label_bytes(spec.label_dtype ? static_cast<size_t>(shape_product(spec.label_shape)) * dtype_size(*spec.label_dtype)
                                     : 0) {}

void BatchBuilder::add(const Stmt& row) {
  const auto data = row.blob_at(2);
  const auto label = row.blob_at(3);
  if (data.size() != m_row_bytes || (m_spec.label_dtype && label.size() != m_label_bytes)) {
    throw Error(fmt::format("dataset \"{}\": row \"{}\": stored sample has {} bytes, expected {}", m_spec.name,
                            row.text_at(1), data.size(), m_row_bytes));
  }
  m_batch.indices.push_back(row.int_at(0));
  m_batch.ids.push_back(row.text_at(1));
  m_data.insert(m_data.end(), data.begin(), data.end());
  m_labels.insert(m_labels.end(), label.begin(), label.end());
  m_batch.metadata.push_back(metadata_at(row, 4));
}

RowBatch BatchBuilder::finish() {
  const auto n = static_cast<int64_t>(m_batch.ids.size());
  Shape shape = m_spec.row_shape;
  shape.insert(shape.begin(), n);
  m_batch.data = Array(m_spec.dtype, std::move(shape), std::move(m_data));
  if (m_spec.label_dtype) {
    Shape ls = m_spec.label_shape;
    ls.insert(ls.begin(), n);
    m_batch.labels = Array(*m_spec.label_dtype, std::move(ls), std::move(m_labels));
  }
  return std::move(m_batch);
}

void write_batch(Connection& conn, const DatasetRecord& ds, const RowBatch& b, RowCounters& k) {
  auto ins = conn.prepare("INSERT INTO rows(dataset_id, idx, id, data, label, metadata) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  std::string md;
  for (size_t i = 0; i < b.size(); ++i) {
    const std::string& id = b.ids[i];
    const auto old = delete_by_id(conn, ds.id, id, k);
    const int64_t idx = !b.indices.empty() ? b.indices[i] : old ? *old : k.next_index;
    const auto data = b.data.row(static_cast<int64_t>(i));
    ins.bind(1, ds.id).bind(2, idx).bind_static_text(3, id).bind_static_blob(4, data);
    int64_t size = static_cast<int64_t>(data.size());
    if (b.labels) {
      const auto label = b.labels->row(static_cast<int64_t>(i));
      ins.bind_static_blob(5, label);
      size += static_cast<int64_t>(label.size());
    }
    if (!b.metadata.empty() && !b.metadata[i].is_null()) {
      md = dump_json(b.metadata[i], fmt::format("dataset \"{}\": row \"{}\"", ds.spec.name, id));
      ins.bind_static_text(6, md);
      size += static_cast<int64_t>(md.size());
    }
    const int rc = ins.try_step();
    ins.reset();
    if (rc != SQLITE_DONE) {
      if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        auto who = conn.prepare("SELECT id FROM rows WHERE dataset_id = ?1 AND idx = ?2");
        who.bind(1, ds.id).bind(2, idx);
        const std::string holder = who.step() ? who.text_at(0) : std::string("?");
        throw ConflictError(fmt::format("dataset \"{}\": row \"{}\": index {} is held by row \"{}\"", ds.spec.name,
                                        id, idx, holder));
      }
      conn.fail(rc, "insert row");
    }
    k.row_count += 1;
    k.row_bytes += size;
    k.next_index = std::max(k.next_index, idx + 1);
  }
}

void update_one(Connection& conn, const DatasetRecord& ds, const std::string& id, const std::optional<Array>& sample,
                const std::optional<json>& patch, RowCounters& k) {
  int64_t idx = 0;
  json metadata;
  {
    auto s = conn.prepare("SELECT idx, metadata FROM rows WHERE dataset_id = ?1 AND id = ?2");
    s.bind(1, ds.id).bind(2, id);
    if (!s.step()) {
      throw NotFoundError(fmt::format("{}: dataset \"{}\": id \"{}\" does not exist", conn.path(), ds.spec.name, id));
    }
    idx = s.int_at(0);
    metadata = metadata_at(s, 1);
  }
  auto size_of = [&] {
    auto s = conn.prepare("SELECT " VSTASH_ROW_SIZE " FROM rows WHERE dataset_id = ?1 AND idx = ?2");
    s.bind(1, ds.id).bind(2, idx);
    s.step();
    return s.int_at(0);
  };
  const int64_t before = size_of();
  if (sample) {
    const Array row = sample_row(ds.spec, *sample, id);
    conn.prepare("UPDATE rows SET data = ?1 WHERE dataset_id = ?2 AND idx = ?3")
        .bind_static_blob(1, row.bytes())
        .bind(2, ds.id)
        .bind(3, idx)
        .run();
  }
  if (patch && !patch->is_null()) {
    if (!patch->is_object()) {
      throw UsageError(fmt::format("dataset \"{}\": row \"{}\": metadata must be a JSON object", ds.spec.name, id));
    }
    if (!metadata.is_object()) {
      metadata = json::object();
    }
    for (const auto& [key, value] : patch->items()) {
      if (value.is_null()) {
        metadata.erase(key);
      } else {
        metadata[key] = value;
      }
    }
    conn.prepare("UPDATE rows SET metadata = ?1 WHERE dataset_id = ?2 AND idx = ?3")
        .bind(1, dump_json(metadata, fmt::format("dataset \"{}\": row \"{}\"", ds.spec.name, id)))
        .bind(2, ds.id)
        .bind(3, idx)
        .run();
  }
  k.row_bytes += size_of() - before;
}

std::optional<int64_t> delete_by_id(Connection& conn, int64_t dataset_id, std::string_view id, RowCounters& k) {
  auto s = conn.prepare("DELETE FROM rows WHERE dataset_id = ?1 AND id = ?2 RETURNING idx, " VSTASH_ROW_SIZE);
  s.bind(1, dataset_id).bind_static_text(2, id);
  if (!s.step()) {
    return std::nullopt;
  }
  k.row_count -= 1;
  k.row_bytes -= s.int_at(1);
  return s.int_at(0);
}

void delete_by_index(Connection& conn, int64_t dataset_id, int64_t idx, RowCounters& k) {
  auto s = conn.prepare("DELETE FROM rows WHERE dataset_id = ?1 AND idx = ?2 RETURNING " VSTASH_ROW_SIZE);
  s.bind(1, dataset_id).bind(2, idx);
  if (s.step()) {
    k.row_count -= 1;
    k.row_bytes -= s.int_at(0);
  }
}

std::vector<int64_t> matching_indices(Connection& conn, int64_t dataset_id, const Filter& filter) {
  auto s = conn.prepare("SELECT idx, metadata FROM rows WHERE dataset_id = ?1 ORDER BY idx");
  s.bind(1, dataset_id);
  std::vector<int64_t> out;
  while (s.step()) {
    if (filter.matches(metadata_at(s, 1))) {
      out.push_back(s.int_at(0));
    }
  }
  return out;
}

std::vector<std::vector<QueryHit>> scan_query(Connection& conn, const DatasetRecord& ds, const std::vector<float>& q,
                                              size_t n, const QueryOptions& o) {
  const auto dim = static_cast<size_t>(ds.spec.dimension());
  if (n == 1 && q.size() != dim) {
    throw UsageError(fmt::format("dataset \"{}\": query vector has {} values, dataset dimension is {}", ds.spec.name,
                                 q.size(), dim));
  }
  if (q.size() != n * dim) {
    throw UsageError(fmt::format("dataset \"{}\": {} query values are not {} queries of dimension {}", ds.spec.name,
                                 q.size(), n, dim));
  }
  if (!std::all_of(q.begin(), q.end(), [](float v) { return std::isfinite(v); })) {
    throw UsageError(fmt::format("dataset \"{}\": query vector holds NaN or Inf", ds.spec.name));
  }
  if (o.top_k < 0) {
    throw UsageError(fmt::format("dataset \"{}\": top_k must not be negative, got {}", ds.spec.name, o.top_k));
  }
  if (n == 0) {
    return {};
  }
  const size_t row_bytes = dim * dtype_size(ds.spec.dtype);
  const bool filtered = o.filter && !o.filter->empty();
  // One pass over the rows for all n queries; the filter is evaluated once per row.
  BlockScan scan(ds.spec.metric, dim, q.data(), n, static_cast<size_t>(std::min(o.top_k, ds.row_count)));
  auto s = conn.prepare(filtered ? "SELECT idx, data, metadata FROM rows WHERE dataset_id = ?1"
                                 : "SELECT idx, data FROM rows WHERE dataset_id = ?1");
  s.bind(1, ds.id);
  while (s.step()) {
    if (filtered && !o.filter->matches(metadata_at(s, 2))) {
      continue;
    }
    const auto blob = s.blob_at(1);
    if (blob.size() != row_bytes) {
      throw Error(fmt::format("{}: dataset \"{}\": stored sample at index {} has {} bytes, expected {}", conn.path(),
                              ds.spec.name, s.int_at(0), blob.size(), row_bytes));
    }
    to_float32(ds.spec.dtype, blob.data(), dim, scan.next_row(s.int_at(0)));
  }
  s.reset();
  std::vector<std::vector<QueryHit>> out;
  out.reserve(n);
  auto row = conn.prepare("SELECT id, data, metadata FROM rows WHERE dataset_id = ?1 AND idx = ?2");
  for (const auto& best : scan.finish()) {
    std::vector<QueryHit> hits;
    hits.reserve(best.size());
    for (const auto& e : best) {
      row.bind(1, ds.id).bind(2, e.index);
      if (!row.step()) {
        throw Error(fmt::format("{}: dataset \"{}\": row at index {} vanished", conn.path(), ds.spec.name, e.index));
      }
      QueryHit h;
      h.id = row.text_at(0);
      h.index = e.index;
      h.score = e.score;
      if (o.include_values) {
        h.values.emplace(dim);
        to_float32(ds.spec.dtype, row.blob_at(1).data(), dim, h.values->data());
      }
      if (o.include_metadata) {
        h.metadata = metadata_at(row, 2);
      }
      row.reset();
      hits.push_back(std::move(h));
    }
    out.push_back(std::move(hits));
  }
  return out;
}

}  // namespace vstash::backends::local
