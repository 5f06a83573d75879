// SPDX-License-Identifier: MIT
// Row storage of the local store: upsert, update, delete, filtered scans and exact query.
#include <fmt/format.h>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/common/blockscan.hpp"
#include "backends/common/rowcheck.hpp"
#include "backends/common/scoring.hpp"
#include "backends/local/localstore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::local {

namespace {

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
    case DType::f32:
      std::memcpy(out, p, n * sizeof(float));
      return;
    case DType::f16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + i * 2, 2);
        out[i] = half_to_float(h);
      }
      return;
    case DType::f64:
      convert(double{});
      return;
    case DType::i8:
      convert(int8_t{});
      return;
    case DType::i16:
      convert(int16_t{});
      return;
    case DType::i32:
      convert(int32_t{});
      return;
    case DType::i64:
      convert(int64_t{});
      return;
    case DType::u8:
      convert(uint8_t{});
      return;
    case DType::u16:
      convert(uint16_t{});
      return;
    case DType::u32:
      convert(uint32_t{});
      return;
    case DType::u64:
      convert(uint64_t{});
      return;
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

namespace {

// Bytes a row's metadata occupies: length() of TEXT counts characters, so it is measured as a blob.
#define VSTASH_METADATA_SIZE "ifnull(length(CAST(metadata AS BLOB)), 0)"

// The $label value of the record at slot, null when the filter does not need it.
json label_at(const SegmentMap* segment, int64_t slot, const DatasetRecord& ds, const Filter& filter) {
  if (!filter.uses_label() || !segment) {
    return nullptr;
  }
  return label_value(*ds.spec.label_dtype, segment->record(slot) + ds.sample_bytes());
}

// The mapping of the dataset's current segment as the caller's transaction sees it.
std::shared_ptr<const SegmentMap> map_segment(Connection& conn, const DatasetRecord& ds) {
  return SegmentMap::open(ds.segment(conn.path()), ds.record_bytes(), ds.slots);
}

}  // namespace

void save_counters(Connection& conn, int64_t dataset_id, const RowCounters& k) {
  conn.prepare(
          "UPDATE datasets SET next_index = ?1, row_count = ?2, row_bytes = ?3, slots = ?4, generation = ?5, "
          "in_order = ?6, implicit_rows = ?8, version = version + 1 WHERE id = ?7")
      .bind(1, k.next_index)
      .bind(2, k.row_count)
      .bind(3, k.row_bytes)
      .bind(4, k.slots)
      .bind(5, k.generation)
      .bind(6, int64_t{k.in_order ? 1 : 0})
      .bind(7, dataset_id)
      .bind(8, k.implicit_rows)
      .run();
}

std::shared_ptr<RowOrder> load_order(Connection& conn, const DatasetRecord& ds) {
  auto order = std::make_shared<RowOrder>();
  order->index.reserve(static_cast<size_t>(ds.row_count));
  order->slot.reserve(static_cast<size_t>(ds.row_count));
  for_each_row(conn, ds, 0, std::numeric_limits<int64_t>::max(), [&](int64_t idx, int64_t slot, const Stmt*) {
    if (slot < 0 || slot >= ds.slots) {
      throw Error(fmt::format("{}: dataset \"{}\": row at index {} names slot {} of {}: store is corrupt", conn.path(),
                              ds.spec.name, idx, slot, ds.slots));
    }
    order->index.push_back(idx);
    order->slot.push_back(slot);
  });
  if (static_cast<int64_t>(order->index.size()) != ds.row_count) {
    throw Error(fmt::format("{}: dataset \"{}\": row count {} disagrees with {} rows stored", conn.path(), ds.spec.name,
                            ds.row_count, order->index.size()));
  }
  return order;
}

namespace {

// When b's rows can be inserted by one statement, the first index and b's ids as a JSON
// array: no row has metadata, the indices are consecutive, and no id needs escaping.
// nullopt otherwise.
std::optional<std::pair<int64_t, std::string>> plain_run(const RowBatch& b, const RowCounters& k) {
  if (!b.indices.empty() && b.indices.size() != b.size()) {
    return std::nullopt;
  }
  const int64_t first = b.indices.empty() ? k.next_index : b.indices[0];
  if (first < k.implicit_rows) {
    return std::nullopt;  // may touch implicit rows: the row-by-row rules
  }
  std::string ids = "[";
  for (size_t i = 0; i < b.size(); ++i) {
    if ((!b.indices.empty() && b.indices[i] != first + static_cast<int64_t>(i)) ||
        (!b.metadata.empty() && !b.metadata[i].is_null())) {
      return std::nullopt;
    }
    const std::string& id = b.ids[i];
    if (implicit_index_of(id, k.implicit_rows)) {
      return std::nullopt;  // an implicit row's id: the upsert rule
    }
    if (std::any_of(id.begin(), id.end(), [](char c) {
          return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x80;
        })) {
      return std::nullopt;
    }
    ids += i ? ",\"" : "\"";
    ids += id;
    ids += '"';
  }
  ids += ']';
  return std::pair(first, std::move(ids));
}

// Inserts the rows of a plain run (plain_run) at indices first.. naming slots first_slot..
// in one statement: a statement per row costs ~7 us, most of a 1M-row ingest. False, with
// nothing inserted, when an id or an index is already held (an upsert or a conflict: the
// caller goes row by row).
bool insert_plain_run(Connection& conn, const DatasetRecord& ds, int64_t first, const std::string& ids,
                      int64_t first_slot) {
  auto s = conn.prepare(
      "INSERT INTO rows(dataset_id, idx, id, slot, metadata) SELECT ?1, ?2 + key, value, ?3 + key, NULL "
      "FROM json_each(?4)");
  s.bind(1, ds.id).bind(2, first).bind(3, first_slot).bind_static_text(4, ids);
  const int rc = s.try_step();
  if (rc == SQLITE_DONE) {
    return true;
  }
  if ((rc & 0xff) == SQLITE_CONSTRAINT) {
    return false;  // the statement's rows are rolled back (ON CONFLICT ABORT)
  }
  conn.fail(rc, "insert rows");
}

}  // namespace

void write_batch(Connection& conn, const DatasetRecord& ds, const RowBatch& b, RowCounters& k) {
  const size_t n = b.size();
  if (n == 0) {
    return;
  }
  // Implicit rows sent again unchanged (ingest --resume) stay as they are; the rest is written.
  if (const size_t same = unchanged_implicit(conn, ds, b, k); same > 0) {
    if (same < n) {
      write_batch(conn, ds, rows_after(b, same), k);
    }
    return;
  }
  // 1. The records, past the committed slots (bytes a crashed writer left there are
  // overwritten), synced before the rows that name them can commit.
  const size_t record = ds.record_bytes();
  const int64_t first_slot = k.slots;
  write_records(segment_path(conn.path(), ds.id, k.generation), ds, b, first_slot);
  // 2. The rows, each naming its slot: implicit rows extending the implicit range, a plain run
  // clear of it in one statement, else row by row.
  if (append_implicit(conn, ds, b, k)) {
    return;
  }
  if (const auto run = plain_run(b, k); run && insert_plain_run(conn, ds, run->first, run->second, first_slot)) {
    // As the loop below would leave them (no old row was replaced).
    k.in_order = k.in_order && k.slots == k.row_count && run->first >= k.next_index;
    k.slots = first_slot + static_cast<int64_t>(n);
    k.row_count += static_cast<int64_t>(n);
    k.row_bytes += static_cast<int64_t>(n * record);
    k.next_index = std::max(k.next_index, run->first + static_cast<int64_t>(n));
    return;
  }
  auto ins = conn.prepare("INSERT INTO rows(dataset_id, idx, id, slot, metadata) VALUES(?1, ?2, ?3, ?4, ?5)");
  std::string md;
  for (size_t i = 0; i < n; ++i) {
    const std::string& id = b.ids[i];
    const auto old = delete_by_id(conn, ds, id, k);
    const int64_t idx = !b.indices.empty() ? b.indices[i] : old ? *old : k.next_index;
    const int64_t slot = first_slot + static_cast<int64_t>(i);
    // Still in order only if this row goes after every live row, into the next slot.
    k.in_order = k.in_order && !old && k.slots == k.row_count && idx >= k.next_index;
    if (implicit_live(conn, ds.id, k.implicit_rows, idx)) {
      throw ConflictError(
          fmt::format("dataset \"{}\": row \"{}\": index {} is held by row \"{}\"", ds.spec.name, id, idx, idx));
    }
    ins.bind(1, ds.id).bind(2, idx).bind_static_text(3, id).bind(4, slot);
    int64_t size = static_cast<int64_t>(record);
    if (!b.metadata.empty() && !b.metadata[i].is_null()) {
      md = dump_json(b.metadata[i], fmt::format("dataset \"{}\": row \"{}\"", ds.spec.name, id));
      ins.bind_static_text(5, md);
      size += static_cast<int64_t>(md.size());
    }
    const int rc = ins.try_step();
    ins.reset();
    if (rc != SQLITE_DONE) {
      if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        auto who = conn.prepare("SELECT id FROM rows WHERE dataset_id = ?1 AND idx = ?2");
        who.bind(1, ds.id).bind(2, idx);
        const std::string holder = who.step() ? who.text_at(0) : std::string("?");
        throw ConflictError(
            fmt::format("dataset \"{}\": row \"{}\": index {} is held by row \"{}\"", ds.spec.name, id, idx, holder));
      }
      conn.fail(rc, "insert row");
    }
    k.slots = slot + 1;
    k.row_count += 1;
    k.row_bytes += size;
    k.next_index = std::max(k.next_index, idx + 1);
  }
}

void update_one(Connection& conn, const DatasetRecord& ds, const std::string& id, const std::optional<Array>& sample,
                const std::optional<json>& patch, RowCounters& k) {
  int64_t idx = 0;
  int64_t slot = 0;
  json metadata;
  int64_t metadata_bytes = 0;
  if (const auto i = implicit_index_of(id, k.implicit_rows); i && implicit_live(conn, ds.id, k.implicit_rows, *i)) {
    // Materialised: a `rows` entry replaces the implicit row (localimplicit.cpp).
    tombstone_implicit(conn, ds.id, *i);
    conn.prepare("INSERT INTO rows(dataset_id, idx, id, slot, metadata) VALUES(?1, ?2, ?3, ?2, NULL)")
        .bind(1, ds.id)
        .bind(2, *i)
        .bind(3, id)
        .run();
  }
  {
    auto s = conn.prepare("SELECT idx, slot, metadata, " VSTASH_METADATA_SIZE
                          " FROM rows WHERE dataset_id = ?1 AND id = ?2");
    s.bind(1, ds.id).bind(2, id);
    if (!s.step()) {
      throw NotFoundError(fmt::format("{}: dataset \"{}\": id \"{}\" does not exist", conn.path(), ds.spec.name, id));
    }
    idx = s.int_at(0);
    slot = s.int_at(1);
    metadata = metadata_at(s, 2);
    metadata_bytes = s.int_at(3);
  }
  if (sample) {
    // The new version goes to a fresh slot: a reader mapping the old one never sees it torn.
    const Array row = sample_row(ds.spec, *sample, id);
    SegmentWriter out(segment_path(conn.path(), ds.id, k.generation), ds.record_bytes());
    std::vector<std::byte> record(ds.record_bytes());
    out.read(slot, record);
    std::memcpy(record.data(), row.bytes().data(), ds.sample_bytes());
    out.write(k.slots, record);
    out.sync();
    conn.prepare("UPDATE rows SET slot = ?1 WHERE dataset_id = ?2 AND idx = ?3")
        .bind(1, k.slots)
        .bind(2, ds.id)
        .bind(3, idx)
        .run();
    k.slots += 1;
    k.in_order = false;
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
    const std::string text = dump_json(metadata, fmt::format("dataset \"{}\": row \"{}\"", ds.spec.name, id));
    conn.prepare("UPDATE rows SET metadata = ?1 WHERE dataset_id = ?2 AND idx = ?3")
        .bind(1, text)
        .bind(2, ds.id)
        .bind(3, idx)
        .run();
    k.row_bytes += static_cast<int64_t>(text.size()) - metadata_bytes;
  }
}

std::optional<int64_t> delete_by_id(Connection& conn, const DatasetRecord& ds, std::string_view id, RowCounters& k) {
  auto s = conn.prepare("DELETE FROM rows WHERE dataset_id = ?1 AND id = ?2 RETURNING idx, " VSTASH_METADATA_SIZE);
  s.bind(1, ds.id).bind_static_text(2, id);
  if (!s.step()) {
    s.reset();
    const auto i = implicit_index_of(id, k.implicit_rows);
    if (!i || !implicit_live(conn, ds.id, k.implicit_rows, *i)) {
      return std::nullopt;
    }
    tombstone_implicit(conn, ds.id, *i);
    k.row_count -= 1;
    k.row_bytes -= static_cast<int64_t>(ds.record_bytes());
    k.in_order = false;
    return i;
  }
  k.row_count -= 1;
  k.row_bytes -= s.int_at(1) + static_cast<int64_t>(ds.record_bytes());
  k.in_order = false;
  const int64_t idx = s.int_at(0);
  s.reset();
  return idx;
}

void delete_by_index(Connection& conn, const DatasetRecord& ds, int64_t idx, RowCounters& k) {
  auto s = conn.prepare("DELETE FROM rows WHERE dataset_id = ?1 AND idx = ?2 RETURNING " VSTASH_METADATA_SIZE);
  s.bind(1, ds.id).bind(2, idx);
  if (s.step()) {
    k.row_count -= 1;
    k.row_bytes -= s.int_at(0) + static_cast<int64_t>(ds.record_bytes());
    k.in_order = false;
  } else if (implicit_live(conn, ds.id, k.implicit_rows, idx)) {
    tombstone_implicit(conn, ds.id, idx);
    k.row_count -= 1;
    k.row_bytes -= static_cast<int64_t>(ds.record_bytes());
    k.in_order = false;
  }
  s.reset();
}

std::vector<int64_t> matching_indices(Connection& conn, const DatasetRecord& ds, const Filter& filter) {
  check_label_filter(&filter, ds.spec.name, ds.spec.label_dtype, ds.spec.label_shape);
  const auto segment = filter.uses_label() ? map_segment(conn, ds) : nullptr;
  std::vector<int64_t> out;
  // An implicit row has no metadata: without $label the filter answers them all alike.
  const bool implicit_match = !filter.uses_label() && filter.matches(nullptr, nullptr);
  for_each_row(conn, ds, 0, std::numeric_limits<int64_t>::max(), [&](int64_t idx, int64_t slot, const Stmt* row) {
    const bool match = row || filter.uses_label() ? filter.matches(row ? metadata_at(*row, 3) : json(nullptr),
                                                                   label_at(segment.get(), slot, ds, filter))
                                                  : implicit_match;
    if (match) {
      out.push_back(idx);
    }
  });
  return out;
}

QueryHit hit_at(Connection& conn, const DatasetRecord& ds, int64_t index, double score, RowRef& row) {
  auto found = row_at_index(conn, ds, index);
  if (!found) {
    throw Error(fmt::format("{}: dataset \"{}\": row at index {} vanished", conn.path(), ds.spec.name, index));
  }
  row = std::move(*found);
  QueryHit h;
  h.id = row.id;
  h.index = index;
  h.score = score;
  return h;
}

namespace {

// Scores `count` rows of the segment (rows' slots and indices; base and stride set here):
// read where they lie when the samples are float32 and every record keeps them aligned, else
// converted one by one.
void scan_segment(BlockScan& scan, const DatasetRecord& ds, const SegmentMap* segment, BlockScan::Rows rows,
                  size_t count) {
  if (count == 0) {
    return;
  }
  rows.base = segment->record(0);
  rows.stride = ds.record_bytes();
  if (ds.spec.dtype == DType::f32 && rows.stride % alignof(float) == 0) {
    scan.scan(rows, count);
    return;
  }
  const auto dim = static_cast<size_t>(ds.spec.dimension());
  for (size_t p = 0; p < count; ++p) {
    to_float32(ds.spec.dtype, segment->record(rows.slots ? rows.slots[p] : static_cast<int64_t>(p)), dim,
               scan.next_row(rows.index(p)));
  }
}

}  // namespace

std::vector<std::vector<QueryHit>> scan_query(Connection& conn, const DatasetRecord& ds, const SegmentMap* segment,
                                              const RowOrder* order, const std::vector<float>& q, size_t n,
                                              const QueryOptions& o) {
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
  const bool filtered = o.filter && !o.filter->empty();
  check_label_filter(o.filter, ds.spec.name, ds.spec.label_dtype, ds.spec.label_shape);
  // One pass over the rows for all n queries, straight from the mapping; the filter picks the
  // candidates first (SQLite over metadata), once for all queries.
  BlockScan scan(ds.spec.metric, dim, q.data(), n, static_cast<size_t>(std::min(o.top_k, ds.row_count)));
  std::vector<int64_t> indices, slots;  // the filter's candidates
  auto score = [&](int64_t idx, int64_t slot) {
    indices.push_back(idx);
    slots.push_back(slot);
  };
  if (filtered) {
    for_each_row(conn, ds, 0, std::numeric_limits<int64_t>::max(), [&](int64_t idx, int64_t slot, const Stmt* row) {
      if (o.filter->matches(row ? metadata_at(*row, 3) : json(nullptr), label_at(segment, slot, ds, *o.filter))) {
        score(idx, slot);
      }
    });
  } else if (ds.row_count > 0) {
    segment->advise_sequential();
  }
  BlockScan::Rows rows;  // every live row: in index order, position == index == slot when plain
  size_t count = static_cast<size_t>(ds.row_count);
  if (filtered) {
    rows.slots = slots.data();
    rows.indices = indices.data();
    count = indices.size();
  } else if (order) {
    rows.slots = order->slot.data();
    rows.indices = order->index.data();
  }
  scan_segment(scan, ds, segment, rows, count);
  std::vector<std::vector<QueryHit>> out;
  out.reserve(n);
  RowRef row;
  for (const auto& best : scan.finish()) {
    std::vector<QueryHit> hits;
    hits.reserve(best.size());
    for (const auto& e : best) {
      QueryHit h = hit_at(conn, ds, e.index, e.score, row);
      if (o.include_values) {
        h.values.emplace(dim);
        to_float32(ds.spec.dtype, segment->record(row.slot), dim, h.values->data());
      }
      if (o.include_metadata) {
        h.metadata = row.metadata();
      }
      hits.push_back(std::move(h));
    }
    out.push_back(std::move(hits));
  }
  return out;
}

bool compact_rows(Connection& conn, const DatasetRecord& ds, RowCounters& k, bool force,
                  std::vector<std::string>& obsolete) {
  const int64_t dead = k.slots - k.row_count;
  const bool due = k.slots >= k_compact_min_slots && dead * 100 > k.slots * k_garbage_percent;
  if (dead <= 0 || !(force || due)) {
    return false;
  }
  // The live rows' slots, in index order, as this transaction sees them (it may have written).
  DatasetRecord now = ds;
  now.slots = k.slots;
  now.row_count = k.row_count;
  now.generation = k.generation;
  now.implicit_rows = k.implicit_rows;
  const auto order = load_order(conn, now);
  const auto from = SegmentMap::open(segment_path(conn.path(), ds.id, k.generation), ds.record_bytes(), k.slots);
  const int64_t generation = k.generation + 1;
  {
    SegmentWriter out(segment_path(conn.path(), ds.id, generation), ds.record_bytes(), true);
    const size_t record = ds.record_bytes();
    constexpr size_t k_buffer_bytes = size_t{8} << 20;
    const size_t per = std::max<size_t>(1, k_buffer_bytes / std::max<size_t>(record, 1));
    std::vector<std::byte> buffer;
    for (size_t i = 0; i < order->slot.size(); i += per) {
      const size_t m = std::min(per, order->slot.size() - i);
      buffer.resize(m * record);
      for (size_t j = 0; j < m; ++j) {
        std::memcpy(buffer.data() + j * record, from->record(order->slot[i + j]), record);
      }
      out.write(static_cast<int64_t>(i), buffer);
    }
    out.sync();
  }
  repoint_compacted(conn, now, *order, k);
  obsolete.push_back(segment_path(conn.path(), ds.id, k.generation));
  k.generation = generation;
  k.slots = k.row_count;
  k.in_order = true;
  return true;
}

}  // namespace vstash::backends::local
