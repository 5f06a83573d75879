// SPDX-License-Identifier: MIT
// Batches of the local store's rows: records gathered from the segment mapping, ids and
// metadata from SQLite (localstore.hpp, BatchBuilder); a batch's records appended to it.
#include <fmt/format.h>
#include <algorithm>

#include "backends/local/localstore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::local {

BatchBuilder::BatchBuilder(const DatasetRecord& ds, const SegmentMap* segment)
    : m_ds(ds), m_segment(segment), m_sample_bytes(ds.sample_bytes()), m_label_bytes(ds.label_bytes()) {}

void BatchBuilder::reserve(size_t n) {
  m_data.reserve(n * m_sample_bytes);
  m_labels.reserve(n * m_label_bytes);
}

void BatchBuilder::add_record(int64_t slot) {
  if (slot < 0 || slot >= m_ds.slots || !m_segment) {
    throw Error(
        fmt::format("dataset \"{}\": row names slot {} of {}: store is corrupt", m_ds.spec.name, slot, m_ds.slots));
  }
  const std::byte* p = m_segment->record(slot);
  m_data.insert(m_data.end(), p, p + m_sample_bytes);
  m_labels.insert(m_labels.end(), p + m_sample_bytes, p + m_sample_bytes + m_label_bytes);
  ++m_rows;
}

void BatchBuilder::add_row(int64_t idx, int64_t slot, const Stmt* row) {
  if (row) {
    add(*row);
    return;
  }
  add_record(slot);
  m_batch.indices.push_back(idx);
  m_batch.ids.push_back(std::to_string(idx));
  m_batch.metadata.push_back(nullptr);
}

void BatchBuilder::add(const Stmt& row) {
  add_record(row.int_at(2));
  m_batch.indices.push_back(row.int_at(0));
  m_batch.ids.push_back(row.text_at(1));
  m_batch.metadata.push_back(row.is_null(3) ? json(nullptr) : json::parse(row.text_at(3)));
}

RowBatch BatchBuilder::finish() {
  const auto n = static_cast<int64_t>(m_rows);
  if (m_batch.ids.size() < m_rows) {
    m_batch.ids.resize(m_rows);  // read_samples: ids are not asked for
  }
  Shape shape = m_ds.spec.row_shape;
  shape.insert(shape.begin(), n);
  m_batch.data = Array(m_ds.spec.dtype, std::move(shape), std::move(m_data));
  if (m_ds.spec.label_dtype) {
    Shape ls = m_ds.spec.label_shape;
    ls.insert(ls.begin(), n);
    m_batch.labels = Array(*m_ds.spec.label_dtype, std::move(ls), std::move(m_labels));
  }
  return std::move(m_batch);
}

void write_records(const std::string& path, const DatasetRecord& ds, const RowBatch& b, int64_t first_slot) {
  const size_t n = b.size();
  const size_t label = ds.label_bytes();
  const size_t record = ds.record_bytes();
  SegmentWriter out(path, record);
  if (label == 0) {
    out.write(first_slot, b.data.bytes());
  } else {
    constexpr size_t k_buffer_bytes = size_t{4} << 20;
    const size_t per = std::max<size_t>(1, k_buffer_bytes / record);
    std::vector<std::byte> buffer;
    buffer.reserve(std::min(per, n) * record);
    for (size_t i = 0; i < n; i += per) {
      buffer.clear();
      for (size_t j = i; j < std::min(n, i + per); ++j) {
        const auto d = b.data.row(static_cast<int64_t>(j));
        const auto l = b.labels->row(static_cast<int64_t>(j));
        buffer.insert(buffer.end(), d.begin(), d.end());
        buffer.insert(buffer.end(), l.begin(), l.end());
      }
      out.write(first_slot + static_cast<int64_t>(i), buffer);
    }
  }
  out.sync();
}

}  // namespace vstash::backends::local
