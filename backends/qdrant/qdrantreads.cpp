// SPDX-License-Identifier: MIT
// Reads from a Qdrant dataset by position (read_rows, read_positions) and by id (fetch).
// Positions become row indices: in a dataset without gaps (live rows == next_index) position
// p is index p; with gaps, the sorted live indices are scrolled once and cached until the row
// count or next_index changes. Rows are then retrieved by point id (POST /points {ids}), the
// id of an index coming from backends/common/rowhints.hpp (the default id's point, or one
// learned); a point is kept only when its _idx is an index asked for. Indices no point was
// found for are retried once the dataset's ids are all learned (one scroll of ids per catalog
// state), then read with an `_idx` filter, so any dataset reads as it did before.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "backends/common/rowhints.hpp"
#include "backends/qdrant/qdrantpoints.hpp"
#include "backends/qdrant/qdrantstore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::qdrant {

namespace {

constexpr int64_t k_rows_per_read = 1000;
constexpr int64_t k_scroll_page = 10000;

using Found = std::map<int64_t, json>;

// The _idx of a point record, or -1 for a record without one.
int64_t stored_index(const json& record) {
  auto payload = record.find("payload");
  if (payload == record.end() || !payload->is_object()) {
    return -1;
  }
  auto idx = payload->find("_idx");
  return idx != payload->end() && idx->is_number_integer() ? idx->get<int64_t>() : -1;
}

std::vector<int64_t> sorted_unique(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// The indices of `wanted` (sorted) that found has no row for.
std::vector<int64_t> missing_of(const std::vector<int64_t>& wanted, const Found& found) {
  std::vector<int64_t> out;
  for (int64_t idx : wanted) {
    if (found.count(idx) == 0) {
      out.push_back(idx);
    }
  }
  return out;
}

// Keeps the points whose _idx is wanted (sorted), learning their ids.
void keep(json& points, const std::vector<int64_t>& wanted, Found& found, hints::RowHints& hints) {
  for (auto& p : points) {
    const int64_t idx = stored_index(p);
    if (std::binary_search(wanted.begin(), wanted.end(), idx) && found.count(idx) == 0) {
      hints.learn(idx, point_key(p.at("id")));
      found.emplace(idx, std::move(p));
    }
  }
}

// Retrieves the points hinted for `wanted` (sorted), sent together with `extra` calls whose
// results are returned, and keeps those that carry a wanted index.
std::vector<json> retrieve_hinted(RestClient& client, const DatasetSpec& spec, const std::vector<int64_t>& wanted,
                                  hints::RowHints& hints, std::vector<Call> calls, Found& found) {
  const size_t extra = calls.size();
  for (size_t i = 0; i < wanted.size(); i += k_ids_per_request) {
    json ids = json::array();
    for (size_t k = i; k < std::min(wanted.size(), i + k_ids_per_request); ++k) {
      ids.push_back(point_id(hints.id_of(wanted[k])));
    }
    const json body = {{"ids", std::move(ids)}, {"with_payload", true}, {"with_vector", !needs_data_blob(spec)}};
    calls.push_back({"POST", collection_path(spec.name) + "/points", body.dump()});
  }
  std::vector<json> results = client.call_all(calls);
  for (size_t i = extra; i < results.size(); ++i) {
    keep(results[i], wanted, found, hints);
  }
  results.resize(extra);
  return results;
}

// Every point's index, learning its id: one scroll of ids and _idx, no vectors.
std::vector<int64_t> scroll_indices(RestClient& client, const std::string& dataset, hints::RowHints& hints) {
  std::vector<int64_t> indices;
  for (const auto& rec :
       scroll_all(client, dataset,
                  json{{"limit", k_scroll_page}, {"with_payload", json::array({"_idx"})}, {"with_vector", false}})) {
    indices.push_back(idx_of(rec));
    hints.learn(indices.back(), point_key(rec.at("id")));
  }
  std::sort(indices.begin(), indices.end());
  return indices;
}

Call scroll_call(const DatasetSpec& spec, const json& filter, int64_t limit) {
  const json body = {
      {"filter", filter}, {"limit", limit}, {"with_payload", true}, {"with_vector", !needs_data_blob(spec)}};
  return {"POST", collection_path(spec.name) + "/points/scroll", body.dump()};
}

RowBatch ordered_rows(const DatasetSpec& spec, const std::vector<int64_t>& indices, const Found& found) {
  std::vector<const json*> ordered;
  ordered.reserve(indices.size());
  for (int64_t idx : indices) {
    if (auto it = found.find(idx); it != found.end()) {
      ordered.push_back(&it->second);
    }
  }
  return decode_records(spec, ordered, true);
}

std::vector<int64_t> iota_of(int64_t lo, int64_t hi) {
  std::vector<int64_t> v(static_cast<size_t>(std::max<int64_t>(hi - lo, 0)));
  std::iota(v.begin(), v.end(), lo);
  return v;
}

}  // namespace

RowBatch QdrantBackend::read_rows(const std::string& dataset, int64_t offset, int64_t count) {
  const Record record = require(dataset);
  if (offset < 0 || count < 0) {
    throw UsageError(fmt::format("dataset \"{}\": offset and count must not be negative", dataset));
  }
  if (offset >= record.next_index) {
    return rows_at(record, {});
  }
  return by_positions(record, iota_of(offset, std::min(record.next_index, offset + count)), true);
}

RowBatch QdrantBackend::read_positions(const std::string& dataset, const std::vector<int64_t>& positions) {
  return by_positions(require(dataset), positions, false);
}

RowBatch QdrantBackend::by_positions(const Record& record, const std::vector<int64_t>& positions, bool clamp) {
  const std::string& dataset = record.spec.name;
  bool gaps = false;
  {
    std::lock_guard lock(m_mutex);
    auto it = m_positions.find(dataset);
    gaps = it != m_positions.end() && it->second.next_index == record.next_index;
  }
  const bool in_range =
      std::all_of(positions.begin(), positions.end(), [&](int64_t p) { return p >= 0 && p < record.next_index; });
  int64_t live = -1;
  if (in_range && !gaps) {
    // Optimistic: a dataset without gaps has position p at index p, so its rows are retrieved
    // beside the count that says whether it has gaps (one round trip, not two).
    const std::vector<int64_t> wanted = sorted_unique(positions);
    auto hints = hints::RowHints::of(m_client.location(), dataset);
    Found found;
    live = retrieve_hinted(m_client, record.spec, wanted, *hints, {count_call(dataset, json())}, found)[0]
               .at("count")
               .get<int64_t>();
    if (live == record.next_index) {
      complete(record, wanted, found);
      return ordered_rows(record.spec, positions, found);
    }
  } else {
    live = count_all(dataset);
  }
  std::vector<int64_t> kept;
  for (int64_t p : positions) {
    if (p >= 0 && p < live) {
      kept.push_back(p);
    } else if (!clamp) {
      throw UsageError(fmt::format("dataset \"{}\": position {} is out of range ({} rows)", dataset, p, live));
    }
  }
  if (live == record.next_index) {
    return rows_at(record, kept);
  }
  const auto& all = live_indices(record, live);
  std::vector<int64_t> indices;
  indices.reserve(kept.size());
  for (int64_t p : kept) {
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

// Rows with the given indices, in the order given (repeats allowed); missing ones left out.
RowBatch QdrantBackend::rows_at(const Record& record, const std::vector<int64_t>& indices) {
  const std::vector<int64_t> wanted = sorted_unique(indices);
  auto hints = hints::RowHints::of(m_client.location(), record.spec.name);
  Found found;
  retrieve_hinted(m_client, record.spec, wanted, *hints, {}, found);
  complete(record, wanted, found);
  return ordered_rows(record.spec, indices, found);
}

// Finds the wanted rows (sorted) that the hinted retrieve missed: once per catalog state the
// ids are all learned and the misses retrieved again; what is still missing is read with an
// _idx filter (rows deleted meanwhile stay missing).
void QdrantBackend::complete(const Record& record, const std::vector<int64_t>& wanted, Found& found) {
  std::vector<int64_t> missing = missing_of(wanted, found);
  if (missing.empty()) {
    return;
  }
  auto hints = hints::RowHints::of(m_client.location(), record.spec.name);
  if (!hints->complete_at(record.version)) {
    scroll_indices(m_client, record.spec.name, *hints);
    hints->set_complete(record.version);
    retrieve_hinted(m_client, record.spec, missing, *hints, {}, found);
    missing = missing_of(missing, found);
  }
  std::vector<Call> calls;
  for (size_t i = 0; i < missing.size(); i += static_cast<size_t>(k_rows_per_read)) {
    const auto end = std::min(missing.size(), i + static_cast<size_t>(k_rows_per_read));
    const json any(std::vector<int64_t>(missing.begin() + static_cast<ptrdiff_t>(i),
                                        missing.begin() + static_cast<ptrdiff_t>(end)));
    const json filter = {{"must", json::array({json{{"key", "_idx"}, {"match", {{"any", any}}}}})}};
    calls.push_back(scroll_call(record.spec, filter, static_cast<int64_t>(end - i)));
  }
  json points = scroll_calls(calls);
  keep(points, missing, found, *hints);
}

// The sorted live indices of a dataset with gaps, cached while (next_index, rows) hold.
const std::vector<int64_t>& QdrantBackend::live_indices(const Record& record, int64_t live) {
  std::lock_guard lock(m_mutex);
  auto& cache = m_positions[record.spec.name];
  if (cache.next_index == record.next_index && cache.rows == live) {
    return cache.indices;
  }
  auto hints = hints::RowHints::of(m_client.location(), record.spec.name);
  std::vector<int64_t> indices = scroll_indices(m_client, record.spec.name, *hints);
  if (static_cast<int64_t>(indices.size()) != live) {
    throw RetryableError(
        fmt::format("{}: dataset \"{}\" changed while reading; retry", m_client.location(), record.spec.name));
  }
  hints->set_complete(record.version);
  cache = {record.next_index, live, std::move(indices)};
  return cache.indices;
}

void QdrantBackend::invalidate(const std::string& dataset) {
  std::lock_guard lock(m_mutex);
  m_positions.erase(dataset);
}

}  // namespace vstash::backends::qdrant
