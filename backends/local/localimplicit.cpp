// SPDX-License-Identifier: MIT
// Implicit rows of the local store (layout 3, localstore.hpp): an ingest without ids or
// metadata at the next indices costs no SQLite row at all; the dataset's implicit_rows grows
// in the same transaction as its committed slot count. Readers merge the implicit range with
// the `rows` table here.
#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

#include "backends/local/localstore.hpp"

namespace vstash::backends::local {

std::optional<int64_t> implicit_index_of(std::string_view id, int64_t k) {
  if (k <= 0 || id.empty() || id.size() > 19 || (id.size() > 1 && id[0] == '0')) {
    return std::nullopt;
  }
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), v);
  if (ec != std::errc() || end != id.data() + id.size() || v < 0 || v >= k) {
    return std::nullopt;  // also rejects a sign: from_chars takes '-' and "-0" is not canonical
  }
  return v;
}

bool implicit_live(Connection& conn, int64_t dataset_id, int64_t k, int64_t idx) {
  if (idx < 0 || idx >= k) {
    return false;
  }
  auto s = conn.prepare("SELECT 1 FROM row_deletions WHERE dataset_id = ?1 AND idx = ?2");
  s.bind(1, dataset_id).bind(2, idx);
  return !s.step();
}

void tombstone_implicit(Connection& conn, int64_t dataset_id, int64_t idx) {
  conn.prepare("INSERT INTO row_deletions(dataset_id, idx) VALUES(?1, ?2)").bind(1, dataset_id).bind(2, idx).run();
}

namespace {

RowRef implicit_row(int64_t idx) { return RowRef{idx, std::to_string(idx), idx, std::nullopt}; }

RowRef row_from(const Stmt& s) {
  RowRef r;
  r.idx = s.int_at(0);
  r.id = s.text_at(1);
  r.slot = s.int_at(2);
  if (!s.is_null(3)) {
    r.metadata_text = s.text_at(3);
  }
  return r;
}

}  // namespace

std::optional<RowRef> row_at_index(Connection& conn, const DatasetRecord& ds, int64_t idx) {
  if (implicit_live(conn, ds.id, ds.implicit_rows, idx)) {
    return implicit_row(idx);
  }
  auto s = conn.prepare("SELECT idx, id, slot, metadata FROM rows WHERE dataset_id = ?1 AND idx = ?2 /* row_at */");
  s.bind(1, ds.id).bind(2, idx);
  return s.step() ? std::optional(row_from(s)) : std::nullopt;
}

std::optional<RowRef> row_with_id(Connection& conn, const DatasetRecord& ds, std::string_view id) {
  if (const auto idx = implicit_index_of(id, ds.implicit_rows);
      idx && implicit_live(conn, ds.id, ds.implicit_rows, *idx)) {
    return implicit_row(*idx);
  }
  auto s = conn.prepare("SELECT idx, id, slot, metadata FROM rows WHERE dataset_id = ?1 AND id = ?2 /* row_with */");
  s.bind(1, ds.id).bind_static_text(2, id);
  return s.step() ? std::optional(row_from(s)) : std::nullopt;
}

std::vector<int64_t> deleted_indices(Connection& conn, int64_t dataset_id, int64_t lo, int64_t hi) {
  std::vector<int64_t> out;
  auto s = conn.prepare("SELECT idx FROM row_deletions WHERE dataset_id = ?1 AND idx >= ?2 AND idx <= ?3 ORDER BY idx");
  s.bind(1, dataset_id).bind(2, lo).bind(3, hi);
  while (s.step()) {
    out.push_back(s.int_at(0));
  }
  return out;
}

void for_each_row(Connection& conn, const DatasetRecord& ds, int64_t lo, int64_t hi, const RowVisitor& fn) {
  lo = std::max<int64_t>(lo, 0);
  // The implicit indices in [lo, top): all but the deleted ones.
  const int64_t top = std::min(ds.implicit_rows, hi == std::numeric_limits<int64_t>::max() ? hi : hi + 1);
  const auto deleted = lo < top ? deleted_indices(conn, ds.id, lo, top - 1) : std::vector<int64_t>{};
  size_t d = 0;
  int64_t next = lo;                        // the next implicit index not yet given
  auto implicit_until = [&](int64_t end) {  // gives the implicit rows below end
    for (end = std::min(end, top); next < end; ++next) {
      if (d < deleted.size() && deleted[d] == next) {
        ++d;
        continue;
      }
      fn(next, next, nullptr);
    }
  };
  auto s = conn.prepare(
      "SELECT idx, id, slot, metadata FROM rows WHERE dataset_id = ?1 AND idx >= ?2 AND idx <= ?3 ORDER BY idx "
      "/* for_each_row */");
  s.bind(1, ds.id).bind(2, lo).bind(3, hi);
  while (s.step()) {
    implicit_until(s.int_at(0));
    fn(s.int_at(0), s.int_at(2), &s);
  }
  s.reset();
  implicit_until(top);
}

namespace {

// Whether b's ids are the decimal indices first.. with no metadata (what `ingest` without
// --ids sends).
bool decimal_ids(const RowBatch& b, int64_t first) {
  for (size_t i = 0; i < b.size(); ++i) {
    const int64_t idx = first + static_cast<int64_t>(i);
    if ((!b.indices.empty() && b.indices[i] != idx) || (!b.metadata.empty() && !b.metadata[i].is_null()) ||
        b.ids[i] != std::to_string(idx)) {
      return false;
    }
  }
  return true;
}

// b's ids as a JSON array (decimal ids need no escaping).
std::string ids_json(const RowBatch& b) {
  std::string ids = "[";
  for (size_t i = 0; i < b.size(); ++i) {
    ids += i ? ",\"" : "\"";
    ids += b.ids[i];
    ids += '"';
  }
  ids += ']';
  return ids;
}

}  // namespace

bool append_implicit(Connection& conn, const DatasetRecord& ds, const RowBatch& b, RowCounters& k) {
  const int64_t first = b.indices.empty() ? k.next_index : b.indices[0];
  if (b.size() == 0 || first != k.implicit_rows || first != k.next_index || first != k.slots) {
    return false;
  }
  if (!decimal_ids(b, first)) {
    return false;
  }
  // A `rows` entry (all below first) holding one of these ids: the upsert rule applies.
  auto any = conn.prepare("SELECT EXISTS(SELECT 1 FROM rows WHERE dataset_id = ?1)");
  any.bind(1, ds.id);
  any.step();
  if (any.int_at(0) != 0) {
    auto held = conn.prepare(
        "SELECT EXISTS(SELECT 1 FROM rows WHERE dataset_id = ?1 AND id IN (SELECT value FROM json_each(?2)))");
    const std::string ids = ids_json(b);
    held.bind(1, ds.id).bind_static_text(2, ids);
    held.step();
    if (held.int_at(0) != 0) {
      return false;
    }
  }
  const auto n = static_cast<int64_t>(b.size());
  k.in_order = k.in_order && k.slots == k.row_count;
  k.implicit_rows += n;
  k.slots += n;
  k.next_index += n;
  k.row_count += n;
  k.row_bytes += n * static_cast<int64_t>(ds.record_bytes());
  return true;
}

}  // namespace vstash::backends::local

namespace vstash::backends::local {

size_t unchanged_implicit(Connection& conn, const DatasetRecord& ds, const RowBatch& b, const RowCounters& k) {
  const int64_t first = b.indices.empty() ? -1 : b.indices[0];
  if (first < 0 || first >= k.implicit_rows || !decimal_ids(b, first)) {
    return 0;
  }
  const int64_t end = std::min(k.implicit_rows, first + static_cast<int64_t>(b.size()));
  const auto deleted = deleted_indices(conn, ds.id, first, end - 1);
  const int64_t stop = deleted.empty() ? end : deleted.front();
  if (stop <= first) {
    return 0;
  }
  const auto map = SegmentMap::open(segment_path(conn.path(), ds.id, k.generation), ds.record_bytes(), k.slots);
  const size_t sample = ds.sample_bytes();
  const size_t label = ds.label_bytes();
  size_t i = 0;
  for (; first + static_cast<int64_t>(i) < stop; ++i) {
    const std::byte* rec = map->record(first + static_cast<int64_t>(i));
    const auto d = b.data.row(static_cast<int64_t>(i));
    if (std::memcmp(rec, d.data(), sample) != 0 ||
        (label > 0 && std::memcmp(rec + sample, b.labels->row(static_cast<int64_t>(i)).data(), label) != 0)) {
      break;
    }
  }
  return i;
}

RowBatch rows_after(const RowBatch& b, size_t skip) {
  const auto n = static_cast<int64_t>(b.size() - skip);
  const auto from = static_cast<std::ptrdiff_t>(skip);
  RowBatch out;
  out.ids.assign(b.ids.begin() + from, b.ids.end());
  if (!b.indices.empty()) {
    out.indices.assign(b.indices.begin() + from, b.indices.end());
  }
  if (!b.metadata.empty()) {
    out.metadata.assign(b.metadata.begin() + from, b.metadata.end());
  }
  out.data = b.data.slice_rows(static_cast<int64_t>(skip), n);
  if (b.labels) {
    out.labels = b.labels->slice_rows(static_cast<int64_t>(skip), n);
  }
  return out;
}

void repoint_compacted(Connection& conn, const DatasetRecord& ds, const RowOrder& order, RowCounters& k) {
  const auto deleted = deleted_indices(conn, ds.id, 0, std::numeric_limits<int64_t>::max());
  auto is_implicit = [&](int64_t idx) {
    return idx < ds.implicit_rows && !std::binary_search(deleted.begin(), deleted.end(), idx);
  };
  const auto n = static_cast<int64_t>(order.index.size());
  int64_t keep = 0;  // the new K: positions 0..keep-1 hold the implicit rows 0..keep-1
  while (keep < n && order.index[static_cast<size_t>(keep)] == keep && is_implicit(keep)) {
    ++keep;
  }
  auto repoint = conn.prepare("UPDATE rows SET slot = ?1 WHERE dataset_id = ?2 AND idx = ?3");
  auto materialise = conn.prepare("INSERT INTO rows(dataset_id, idx, id, slot, metadata) VALUES(?1, ?2, ?3, ?4, NULL)");
  for (int64_t p = keep; p < n; ++p) {
    const int64_t idx = order.index[static_cast<size_t>(p)];
    if (is_implicit(idx)) {
      materialise.bind(1, ds.id).bind(2, idx).bind(3, std::to_string(idx)).bind(4, p).run();
      materialise.reset();
    } else if (order.slot[static_cast<size_t>(p)] != p) {
      repoint.bind(1, p).bind(2, ds.id).bind(3, idx).run();
      repoint.reset();
    }
  }
  conn.prepare("DELETE FROM row_deletions WHERE dataset_id = ?1").bind(1, ds.id).run();
  k.implicit_rows = keep;
}

}  // namespace vstash::backends::local
