// SPDX-License-Identifier: MIT
// The Pinecone store's reads: rows by position (read_rows, read_positions), by id (fetch), and
// counts. A position becomes a row index ("_idx") through the live rows per window of
// k_max_top_k indices, cached while next_index is unchanged: when describe_index_stats counts
// next_index rows the dataset has no gaps and position p is index p; otherwise each window is
// counted with an ids-only filtered query. Rows are then fetched by id (GET /vectors/fetch),
// the id of an index coming from backends/common/rowhints.hpp (the default id, or one learned);
// a record is kept only when its "_idx" is an index asked for, and the indices no record was
// found for are read with {"_idx": {"$in": [...]}} queries (sized under the 4 MiB reply cap),
// whose ids are learned for the next read.
#include <fmt/format.h>

#include <algorithm>

#include "backends/common/rowhints.hpp"

#include "backends/pinecone/pineconestore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pinecone {

namespace {

constexpr int64_t k_window = k_max_top_k;

json idx_range(int64_t lo, int64_t hi) { return json{{"_idx", {{"$gte", lo}, {"$lt", hi}}}}; }

json both(const json& a, const json& b) {
  if (a.is_null()) {
    return b;
  }
  return json{{"$and", json::array({a, b})}};
}

// Keeps a record whose _idx is wanted (sorted) and not yet read, learning its stored id.
void keep_row(const DatasetSpec& spec, const std::string& stored, const json& record,
              const std::vector<int64_t>& wanted, std::map<int64_t, DecodedRow>& by_index, hints::RowHints& hints) {
  DecodedRow row = decode_row(spec, record);
  if (std::binary_search(wanted.begin(), wanted.end(), row.index) && by_index.count(row.index) == 0) {
    hints.learn(row.index, stored);
    const int64_t idx = row.index;
    by_index.emplace(idx, std::move(row));
  }
}

}  // namespace

RowBatch PineconeBackend::read_rows(const std::string& dataset, int64_t offset, int64_t count) {
  const CatalogEntry entry = require(dataset);
  std::vector<int64_t> positions;
  int64_t live = 0;
  for (int64_t c : position_cache(entry).counts) {
    live += c;
  }
  for (int64_t p = std::max<int64_t>(offset, 0); p < std::min(live, offset + count); ++p) {
    positions.push_back(p);
  }
  return read_indices(entry, positions_to_indices(entry, positions));
}

RowBatch PineconeBackend::read_positions(const std::string& dataset, const std::vector<int64_t>& positions) {
  const CatalogEntry entry = require(dataset);
  return read_indices(entry, positions_to_indices(entry, positions));
}

RowBatch PineconeBackend::fetch(const std::string& dataset, const std::vector<std::string>& ids) {
  const CatalogEntry entry = require(dataset);
  std::vector<std::string> stored;
  for (const auto& id : ids) {
    stored.push_back(stored_id(id));
  }
  const auto records =
      m_indexes.fetch(m_indexes.of(entry.spec), m_indexes.namespace_of(dataset), stored, entry.row_bytes);
  std::vector<DecodedRow> rows;
  for (const auto& s : stored) {
    if (auto it = records.find(s); it != records.end()) {
      rows.push_back(decode_row(entry.spec, it->second));
    }
  }
  return assemble_rows(entry.spec, rows);
}

int64_t PineconeBackend::count(const std::string& dataset, const Filter* filter) {
  const CatalogEntry entry = require(dataset);
  const json f = filter ? translate_filter(*filter, &entry) : json();
  if (f.is_null()) {
    return Indexes::namespace_rows(m_indexes.namespace_counts(m_indexes.of(entry.spec)),
                                   m_indexes.namespace_of(dataset));
  }
  int64_t n = 0;
  for (int64_t c : window_counts(entry, &f)) {
    n += c;
  }
  return n;
}

// A query that selects by filter only: the vector is a fixed placeholder of the index's dimension.
json PineconeBackend::query_body(const CatalogEntry& entry, int64_t top_k, const json& filter, bool values,
                                 bool metadata) {
  json body = {{"namespace", m_indexes.namespace_of(entry.spec.name)},
               {"topK", top_k},
               {"includeValues", values},
               {"includeMetadata", metadata}};
  std::vector<float> dummy(static_cast<size_t>(std::max<int64_t>(entry.spec.dimension(), 1)), 0.0F);
  dummy[0] = 1.0F;
  body["vector"] = dummy;
  if (!filter.is_null()) {
    body["filter"] = filter;
  }
  return body;
}

// Live rows per window of k_window indices, each counted with an ids-only filtered query.
std::vector<int64_t> PineconeBackend::window_counts(const CatalogEntry& entry, const json* filter) {
  Connection& c = m_indexes.of(entry.spec);
  std::vector<http::Request> requests;
  for (int64_t lo = 0; lo < entry.next_index; lo += k_window) {
    const int64_t hi = std::min(entry.next_index, lo + k_window);
    json f = both(filter ? *filter : json(), idx_range(lo, hi));
    requests.push_back(c.make_post("/query", query_body(entry, hi - lo, f, false, false).dump()));
  }
  std::vector<int64_t> counts;
  for (const auto& resp : c.send_all(std::move(requests))) {
    counts.push_back(static_cast<int64_t>(resp.parsed["matches"].size()));
  }
  return counts;
}

PineconeBackend::PositionCache& PineconeBackend::position_cache(const CatalogEntry& entry) {
  {
    std::lock_guard lock(m_mutex);
    auto it = m_positions.find(entry.spec.name);
    if (it != m_positions.end() && it->second.next_index == entry.next_index) {
      return it->second;
    }
  }
  PositionCache pc;
  pc.next_index = entry.next_index;
  const int64_t live = Indexes::namespace_rows(m_indexes.namespace_counts(m_indexes.of(entry.spec)),
                                               m_indexes.namespace_of(entry.spec.name));
  if (live == entry.next_index) {
    // No gaps: every window is full, so nothing needs a filtered count.
    for (int64_t lo = 0; lo < entry.next_index; lo += k_window) {
      pc.counts.push_back(std::min(entry.next_index, lo + k_window) - lo);
    }
  } else {
    pc.counts = window_counts(entry, nullptr);
  }
  std::lock_guard lock(m_mutex);
  return m_positions[entry.spec.name] = std::move(pc);
}

// Sorted live indices of one window that has gaps, read in reply-sized sub-ranges.
const std::vector<int64_t>& PineconeBackend::window_indices(const CatalogEntry& entry, PositionCache& pc, int64_t w) {
  if (auto it = pc.indices.find(w); it != pc.indices.end()) {
    return it->second;
  }
  Connection& c = m_indexes.of(entry.spec);
  const int64_t lo = w * k_window;
  const int64_t hi = std::min(entry.next_index, lo + k_window);
  const int64_t step =
      std::clamp<int64_t>(static_cast<int64_t>(k_response_budget) / std::max<int64_t>(entry.row_bytes, 1), 1, k_window);
  std::vector<http::Request> requests;
  for (int64_t a = lo; a < hi; a += step) {
    const int64_t b = std::min(hi, a + step);
    requests.push_back(c.make_post("/query", query_body(entry, b - a, idx_range(a, b), false, true).dump()));
  }
  std::vector<int64_t> found;
  for (const auto& resp : c.send_all(std::move(requests))) {
    for (const auto& m : resp.parsed["matches"]) {
      found.push_back(static_cast<int64_t>(m.value("metadata", json::object()).value("_idx", -1.0)));
    }
  }
  std::sort(found.begin(), found.end());
  return pc.indices[w] = std::move(found);
}

std::vector<int64_t> PineconeBackend::positions_to_indices(const CatalogEntry& entry,
                                                           const std::vector<int64_t>& positions) {
  PositionCache& pc = position_cache(entry);
  std::vector<int64_t> starts{0};
  for (int64_t c : pc.counts) {
    starts.push_back(starts.back() + c);
  }
  std::vector<int64_t> out;
  for (int64_t p : positions) {
    if (p < 0 || p >= starts.back()) {
      throw UsageError(
          fmt::format("dataset \"{}\": position {} is out of range ({} rows)", entry.spec.name, p, starts.back()));
    }
    const auto w = static_cast<int64_t>(std::upper_bound(starts.begin(), starts.end(), p) - starts.begin()) - 1;
    const int64_t lo = w * k_window;
    const int64_t width = std::min(entry.next_index, lo + k_window) - lo;
    const int64_t r = p - starts[static_cast<size_t>(w)];
    if (pc.counts[static_cast<size_t>(w)] == width) {
      out.push_back(lo + r);
    } else {
      const auto& live = window_indices(entry, pc, w);
      if (r >= static_cast<int64_t>(live.size())) {
        throw RetryableError(fmt::format("{}: dataset \"{}\" changed while reading; retry",
                                         m_indexes.of(entry.spec).location(), entry.spec.name));
      }
      out.push_back(live[static_cast<size_t>(r)]);
    }
  }
  return out;
}

// The rows with these _idx values, in the order given: fetched by hinted id, then the misses
// by filter.
RowBatch PineconeBackend::read_indices(const CatalogEntry& entry, const std::vector<int64_t>& indices) {
  Connection& c = m_indexes.of(entry.spec);
  const std::string ns = m_indexes.namespace_of(entry.spec.name);
  auto hints = hints::RowHints::of(c.location(), ns);
  std::vector<int64_t> wanted(indices);
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  std::vector<std::string> ids;
  ids.reserve(wanted.size());
  for (int64_t idx : wanted) {
    ids.push_back(hints->id_of(idx));
  }
  std::map<int64_t, DecodedRow> by_index;
  if (!ids.empty()) {
    for (const auto& [sid, rec] : m_indexes.fetch(c, ns, ids, entry.row_bytes)) {
      keep_row(entry.spec, sid, rec, wanted, by_index, *hints);
    }
  }
  std::vector<int64_t> missing;
  for (int64_t idx : wanted) {
    if (by_index.count(idx) == 0) {
      missing.push_back(idx);
    }
  }
  if (!missing.empty()) {
    query_indices(entry, missing, by_index);
  }
  std::vector<DecodedRow> rows;
  for (int64_t idx : indices) {
    if (auto it = by_index.find(idx); it != by_index.end()) {
      rows.push_back(it->second);
    }
  }
  return assemble_rows(entry.spec, rows);
}

// The rows of these _idx values (sorted) by {"_idx": {"$in": [...]}} queries, learning their ids.
void PineconeBackend::query_indices(const CatalogEntry& entry, const std::vector<int64_t>& wanted,
                                    std::map<int64_t, DecodedRow>& by_index) {
  Connection& c = m_indexes.of(entry.spec);
  auto hints = hints::RowHints::of(c.location(), m_indexes.namespace_of(entry.spec.name));
  const bool values = !keeps_exact_blob(entry.spec);
  const size_t per = std::clamp<size_t>(k_response_budget / static_cast<size_t>(std::max<int64_t>(entry.row_bytes, 1)),
                                        1, k_max_ids_per_request);
  std::vector<http::Request> requests;
  for (size_t i = 0; i < wanted.size(); i += per) {
    const auto end = std::min(wanted.size(), i + per);
    json f = {{"_idx",
               {{"$in", std::vector<int64_t>(wanted.begin() + static_cast<ptrdiff_t>(i),
                                             wanted.begin() + static_cast<ptrdiff_t>(end))}}}};
    requests.push_back(c.make_post("/query", query_body(entry, static_cast<int64_t>(end - i), f, values, true).dump()));
  }
  for (const auto& resp : c.send_all(std::move(requests))) {
    for (const auto& m : resp.parsed["matches"]) {
      keep_row(entry.spec, m.at("id").get<std::string>(), m, wanted, by_index, *hints);
    }
  }
}

}  // namespace vstash::backends::pinecone
