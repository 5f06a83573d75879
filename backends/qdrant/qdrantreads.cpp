// SPDX-License-Identifier: MIT
// Reads from a Qdrant dataset by position (read_rows, read_positions) and by id (fetch). Rows
// of a dataset without gaps are scrolled by an _idx range; with gaps, the sorted live
// indices are scrolled once and cached until the row count or next_index changes.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "backends/qdrant/qdrantpoints.hpp"
#include "backends/qdrant/qdrantstore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::qdrant {

namespace {

constexpr int64_t k_rows_per_read = 1000;
constexpr int64_t k_scroll_page = 10000;

json idx_range(int64_t lo, int64_t hi) {
  return json{{"must", json::array({json{{"key", "_idx"}, {"range", {{"gte", lo}, {"lt", hi}}}}})}};
}

std::vector<const json*> pointers(const std::vector<json>& records) {
  std::vector<const json*> out;
  out.reserve(records.size());
  for (const auto& r : records) {
    out.push_back(&r);
  }
  return out;
}

json scroll_body(const DatasetSpec& spec, const json& filter, int64_t limit) {
  return json{{"filter", filter}, {"limit", limit}, {"with_payload", true}, {"with_vector", !needs_data_blob(spec)}};
}

Call scroll_call(const DatasetSpec& spec, const json& filter, int64_t limit) {
  return {"POST", collection_path(spec.name) + "/points/scroll", scroll_body(spec, filter, limit).dump()};
}

}  // namespace

RowBatch QdrantBackend::read_rows(const std::string& dataset, int64_t offset, int64_t count) {
  const Record record = require(dataset);
  if (offset < 0 || count < 0) {
    throw UsageError(fmt::format("dataset \"{}\": offset and count must not be negative", dataset));
  }
  const int64_t live = count_all(dataset);
  const int64_t lo = std::min(offset, live);
  const int64_t hi = std::min(live, offset + count);
  if (live == record.next_index) {
    return rows_in_range(record, lo, hi);
  }
  const auto& all = live_indices(record, live);
  return rows_at(record, std::vector<int64_t>(all.begin() + lo, all.begin() + hi));
}

RowBatch QdrantBackend::read_positions(const std::string& dataset, const std::vector<int64_t>& positions) {
  const Record record = require(dataset);
  const int64_t live = count_all(dataset);
  for (int64_t p : positions) {
    if (p < 0 || p >= live) {
      throw UsageError(fmt::format("dataset \"{}\": position {} is out of range ({} rows)", dataset, p, live));
    }
  }
  if (live == record.next_index) {
    return rows_at(record, positions);
  }
  const auto& all = live_indices(record, live);
  std::vector<int64_t> indices;
  indices.reserve(positions.size());
  for (int64_t p : positions) {
    indices.push_back(all[static_cast<size_t>(p)]);
  }
  return rows_at(record, indices);
}

RowBatch QdrantBackend::fetch(const std::string& dataset, const std::vector<std::string>& ids) {
  const Record record = require(dataset);
  const auto records = retrieve(m_client, dataset, distinct_point_ids(ids), true, !needs_data_blob(record.spec));
  std::map<std::string, const json*> by_key;
  for (const auto& r : records) {
    by_key[point_key(r.at("id"))] = &r;
  }
  std::vector<const json*> ordered;
  for (const auto& id : ids) {
    if (auto it = by_key.find(point_key(point_id(id))); it != by_key.end()) {
      ordered.push_back(it->second);
    }
  }
  return decode_records(record.spec, ordered, true);
}

Call QdrantBackend::count_call(const std::string& dataset, const json& filter) const {
  json body = {{"exact", true}};
  if (filter.is_object() && !filter.empty()) {
    body["filter"] = filter;
  }
  return {"POST", collection_path(dataset) + "/points/count", body.dump()};
}

int64_t QdrantBackend::count_all(const std::string& dataset) {
  return m_client.call(count_call(dataset, json())).at("count").get<int64_t>();
}

// The points of the scroll calls' replies, in reply order.
std::vector<json> QdrantBackend::scroll_calls(const std::vector<Call>& calls) {
  std::vector<json> records;
  for (auto& result : m_client.call_all(calls)) {
    for (auto& p : result.at("points")) {
      records.push_back(std::move(p));
    }
  }
  return records;
}

// Rows with indices lo..hi-1, all live (the dataset has no gaps), in index order.
RowBatch QdrantBackend::rows_in_range(const Record& record, int64_t lo, int64_t hi) {
  std::vector<Call> calls;
  for (int64_t a = lo; a < hi; a += k_rows_per_read) {
    const int64_t b = std::min(hi, a + k_rows_per_read);
    calls.push_back(scroll_call(record.spec, idx_range(a, b), b - a));
  }
  std::vector<json> records = scroll_calls(calls);
  std::sort(records.begin(), records.end(), [](const json& a, const json& b) { return idx_of(a) < idx_of(b); });
  return decode_records(record.spec, pointers(records), true);
}

// Rows with the given indices, in the order given (repeats allowed); missing ones left out.
RowBatch QdrantBackend::rows_at(const Record& record, const std::vector<int64_t>& indices) {
  std::vector<int64_t> unique(indices);
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  std::vector<Call> calls;
  for (size_t i = 0; i < unique.size(); i += static_cast<size_t>(k_rows_per_read)) {
    const auto end = std::min(unique.size(), i + static_cast<size_t>(k_rows_per_read));
    const json any(
        std::vector<int64_t>(unique.begin() + static_cast<ptrdiff_t>(i), unique.begin() + static_cast<ptrdiff_t>(end)));
    const json filter = {{"must", json::array({json{{"key", "_idx"}, {"match", {{"any", any}}}}})}};
    calls.push_back(scroll_call(record.spec, filter, static_cast<int64_t>(end - i)));
  }
  const std::vector<json> records = scroll_calls(calls);
  std::map<int64_t, const json*> by_index;
  for (const auto& r : records) {
    by_index[idx_of(r)] = &r;
  }
  std::vector<const json*> ordered;
  for (int64_t idx : indices) {
    if (auto it = by_index.find(idx); it != by_index.end()) {
      ordered.push_back(it->second);
    }
  }
  return decode_records(record.spec, ordered, true);
}

// The sorted live indices of a dataset with gaps, cached while (next_index, rows) hold.
const std::vector<int64_t>& QdrantBackend::live_indices(const Record& record, int64_t live) {
  std::lock_guard lock(m_mutex);
  auto& cache = m_positions[record.spec.name];
  if (cache.next_index == record.next_index && cache.rows == live) {
    return cache.indices;
  }
  std::vector<int64_t> indices;
  for (const auto& rec :
       scroll_all(m_client, record.spec.name,
                  json{{"limit", k_scroll_page}, {"with_payload", json::array({"_idx"})}, {"with_vector", false}})) {
    indices.push_back(idx_of(rec));
  }
  std::sort(indices.begin(), indices.end());
  if (static_cast<int64_t>(indices.size()) != live) {
    throw RetryableError(
        fmt::format("{}: dataset \"{}\" changed while reading; retry", m_client.location(), record.spec.name));
  }
  cache = {record.next_index, live, std::move(indices)};
  return cache.indices;
}

void QdrantBackend::invalidate(const std::string& dataset) {
  std::lock_guard lock(m_mutex);
  m_positions.erase(dataset);
}

}  // namespace vstash::backends::qdrant
