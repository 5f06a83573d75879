// SPDX-License-Identifier: MIT
// Batches of the local store's rows: records gathered from the segment mapping, ids and
// metadata from SQLite (localstore.hpp, BatchBuilder); a batch's records appended to it;
// the SampleReader of a streamed epoch (localsamplereader.hpp).
#include <fmt/format.h>
#include <algorithm>
#include <cstring>

#include "backends/local/localsamplereader.hpp"
#include "backends/local/localstore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::local {

namespace {

// A slot a committed row names must lie inside the dataset's slots and the mapping.
void check_slot(const std::string& dataset, int64_t slot, int64_t slots, const SegmentMap* segment) {
  if (slot < 0 || slot >= slots || !segment || slot >= segment->slots()) {
    throw Error(fmt::format("dataset \"{}\": row names slot {} of {}: store is corrupt", dataset, slot, slots));
  }
}

// Records gathered from one mapping: a bounds check and one or two memcpy per row, the
// record a few rows ahead prefetched (a shuffled gather misses the cache on every row).
class LocalSampleReader final : public SampleReader {
 public:
  LocalSampleReader(const DatasetRecord& ds, std::shared_ptr<const SegmentMap> segment,
                    std::shared_ptr<const RowOrder> order)
      : m_name(ds.spec.name),
        m_rows(ds.row_count),
        m_slots(ds.slots),
        m_sample_bytes(ds.sample_bytes()),
        m_label_bytes(ds.label_bytes()),
        m_segment(std::move(segment)),
        m_order(std::move(order)) {}

  int64_t rows() const override { return m_rows; }

  void gather(std::span<const int64_t> positions, std::byte* data, std::byte* labels) const override {
    constexpr size_t k_ahead = 8;
    const size_t n = positions.size();
    for (size_t i = 0; i < n; ++i) {
      if (i + k_ahead < n) {
        const int64_t ahead = positions[i + k_ahead];
        if (ahead >= 0 && ahead < m_rows) {
          __builtin_prefetch(m_segment->record(slot_of(ahead)));
        }
      }
      const int64_t p = positions[i];
      if (p < 0 || p >= m_rows) {
        throw UsageError(fmt::format("dataset \"{}\": position {} is out of range ({} rows)", m_name, p, m_rows));
      }
      const int64_t slot = slot_of(p);
      check_slot(m_name, slot, m_slots, m_segment.get());
      const std::byte* r = m_segment->record(slot);
      std::memcpy(data + i * m_sample_bytes, r, m_sample_bytes);
      if (labels != nullptr && m_label_bytes > 0) {
        std::memcpy(labels + i * m_label_bytes, r + m_sample_bytes, m_label_bytes);
      }
    }
  }

 private:
  int64_t slot_of(int64_t p) const { return m_order ? m_order->slot[static_cast<size_t>(p)] : p; }

  std::string m_name;
  int64_t m_rows;
  int64_t m_slots;
  size_t m_sample_bytes;
  size_t m_label_bytes;
  std::shared_ptr<const SegmentMap> m_segment;
  std::shared_ptr<const RowOrder> m_order;
};

}  // namespace

std::unique_ptr<SampleReader> make_sample_reader(const DatasetRecord& ds, std::shared_ptr<const SegmentMap> segment,
                                                 std::shared_ptr<const RowOrder> order) {
  return std::make_unique<LocalSampleReader>(ds, std::move(segment), std::move(order));
}

BatchBuilder::BatchBuilder(const DatasetRecord& ds, const SegmentMap* segment)
    : m_ds(ds), m_segment(segment), m_sample_bytes(ds.sample_bytes()), m_label_bytes(ds.label_bytes()) {}

void BatchBuilder::reserve(size_t n) {
  m_data.reserve(n * m_sample_bytes);
  m_labels.reserve(n * m_label_bytes);
}

void BatchBuilder::add_record(int64_t slot) {
  check_slot(m_ds.spec.name, slot, m_ds.slots, m_segment);
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
