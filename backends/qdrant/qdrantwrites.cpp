// SPDX-License-Identifier: MIT
// Writes to a Qdrant dataset: write_rows (the upsert path: point ids, row indices, next_index
// reservation, parallel encoding, byte-bounded requests), update_row, delete_ids and
// delete_where.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <thread>

#include "backends/common/rowcheck.hpp"
#include "backends/qdrant/qdrantpoints.hpp"
#include "backends/qdrant/qdrantstore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::qdrant {

namespace {

constexpr size_t k_points_per_request = 1000;

// The point ids of the batch's ids; two ids naming one point are bad input.
std::vector<json> batch_point_ids(const std::string& dataset, const RowBatch& batch) {
  std::vector<json> pids;
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < batch.size(); ++i) {
    pids.push_back(point_id(batch.ids[i]));
    auto [it, fresh] = seen.emplace(point_key(pids.back()), i);
    if (!fresh) {
      throw UsageError(
          fmt::format("dataset \"{}\": ids \"{}\" and \"{}\" name the same qdrant point (UUIDs "
                      "compare case-insensitively)",
                      dataset, batch.ids[it->second], batch.ids[i]));
    }
  }
  return pids;
}

// The row's metadata after update_row's patch: null values remove their key.
json patched_metadata(const std::string& dataset, const std::string& id, const json& stored, const json& patch) {
  if (!patch.is_object()) {
    throw UsageError(fmt::format("dataset \"{}\": row \"{}\": metadata must be a JSON object", dataset, id));
  }
  json merged = stored.is_object() ? stored : json::object();
  for (const auto& [k, v] : patch.items()) {
    if (v.is_null()) {
      merged.erase(k);
    } else {
      merged[k] = v;
    }
  }
  return merged;
}

}  // namespace

void QdrantBackend::write_rows(const std::string& dataset, const RowBatch& batch) {
  const Record record = require(dataset);
  check_batch(record.spec, batch);
  if (batch.size() == 0) {
    return;
  }
  const std::vector<json> pids = batch_point_ids(dataset, batch);
  const std::vector<int64_t> indices =
      batch.indices.empty() ? row_indices(dataset, batch, pids, record.next_index) : batch.indices;
  advance_next_index(record, indices);  // reserve the indices before any row uses them
  const auto t0 = std::chrono::steady_clock::now();
  const auto bodies =
      pack_points(encode_parallel(record.spec, batch, indices), k_points_per_request, static_cast<size_t>(m_max_bytes));
  const auto t1 = std::chrono::steady_clock::now();
  upsert_bodies(m_client, dataset, bodies);
  const auto t2 = std::chrono::steady_clock::now();
  m_encode_s += std::chrono::duration<double>(t1 - t0).count();
  m_send_s += std::chrono::duration<double>(t2 - t1).count();
  m_rows_sent += static_cast<int64_t>(batch.size());
  for (const auto& b : bodies) {
    m_bytes_sent += static_cast<int64_t>(b.size());
  }
  invalidate(dataset);
}

// Indices for rows written without them: an id that exists keeps its index (upsert replaces
// the row in place), a new one takes the next after next_index.
std::vector<int64_t> QdrantBackend::row_indices(const std::string& dataset, const RowBatch& batch,
                                                const std::vector<json>& pids, int64_t next_index) {
  std::map<std::string, int64_t> existing;
  for (const auto& rec : retrieve(m_client, dataset, pids, json::array({"_idx"}), false)) {
    existing[point_key(rec.at("id"))] = idx_of(rec);
  }
  std::vector<int64_t> indices;
  indices.reserve(batch.size());
  for (const auto& pid : pids) {
    auto it = existing.find(point_key(pid));
    indices.push_back(it != existing.end() ? it->second : next_index++);
  }
  return indices;
}

// Moves the record's next_index past the highest index written, with the record read at the
// start of the write as the compare-and-set's `seen` (no second read of it); should a store
// report a change meanwhile, the catalog's advance re-reads it (never moving backwards).
void QdrantBackend::advance_next_index(const Record& record, const std::vector<int64_t>& indices) {
  int64_t end = record.next_index;
  for (int64_t idx : indices) {
    if (idx < 0) {
      throw UsageError(fmt::format("dataset \"{}\": row index {} is negative", record.spec.name, idx));
    }
    end = std::max(end, idx + 1);
  }
  if (end == record.next_index) {
    return;
  }
  Record next = record;
  next.next_index = end;
  if (!m_datasets.compare_and_set(record, next)) {
    m_catalog.advance(record.spec.name, end);
  }
}

// Point JSON of a batch, encoded by up to `parallel` threads: float formatting is the main
// cost of an ingest (bench/qdrant_bench.sh), and the requests are sent `parallel` at a time.
std::vector<std::string> QdrantBackend::encode_parallel(const DatasetSpec& spec, const RowBatch& batch,
                                                        const std::vector<int64_t>& indices) const {
  std::vector<std::string> out(batch.size());
  const size_t workers = std::clamp<size_t>(batch.size() / 256, 1, static_cast<size_t>(m_parallel));
  if (workers == 1) {
    encode_points_range(spec, batch, indices, 0, batch.size(), out);
    return out;
  }
  std::vector<std::exception_ptr> errors(workers);
  std::vector<std::thread> threads;
  const size_t per = (batch.size() + workers - 1) / workers;
  for (size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      try {
        encode_points_range(spec, batch, indices, w * per, std::min(batch.size(), (w + 1) * per), out);
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (const auto& e : errors) {
    if (e) {
      std::rethrow_exception(e);
    }
  }
  return out;
}

void QdrantBackend::update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                               const std::optional<json>& metadata) {
  const Record record = require(dataset);
  const DatasetSpec& spec = record.spec;
  const json pid = point_id(id);
  const auto found = retrieve(m_client, dataset, {pid}, true, !needs_data_blob(spec));
  if (found.empty()) {
    throw NotFoundError(fmt::format("{}: dataset \"{}\": row \"{}\" does not exist", m_client.location(), dataset, id));
  }
  RowBatch row = decode_records(spec, {&found[0]}, sample.has_value());
  if (metadata) {
    row.metadata[0] = patched_metadata(dataset, id, row.metadata[0], *metadata);
  }
  if (!sample) {
    // Metadata only: set-payload merges top-level keys, so this replaces "metadata" (and its
    // filter aids) whole.
    json payload = {{"metadata", row.metadata[0]}, {"_keys", json::array()}, {"_num", json::object()}};
    payload.update(filter_aids(row.metadata[0]));
    const json body = {{"payload", payload}, {"points", json::array({pid})}};
    m_client.call({"POST", collection_path(dataset) + "/points/payload" + std::string(k_wait), body.dump()});
    invalidate(dataset);
    return;
  }
  Shape want{1};
  want.insert(want.end(), spec.row_shape.begin(), spec.row_shape.end());
  if (sample->dtype() != spec.dtype || (sample->shape() != spec.row_shape && sample->shape() != want)) {
    throw UsageError(fmt::format("dataset \"{}\": row \"{}\": sample must be {} of shape {}, got {} of shape {}",
                                 dataset, id, dtype_name(spec.dtype), shape_to_string(spec.row_shape),
                                 dtype_name(sample->dtype()), shape_to_string(sample->shape())));
  }
  row.data = Array(sample->dtype(), want, std::vector<std::byte>(sample->bytes().begin(), sample->bytes().end()));
  check_batch(spec, row);
  upsert_bodies(m_client, dataset,
                pack_points(encode_points(spec, row, row.indices), 1, static_cast<size_t>(k_server_request_bytes)));
  invalidate(dataset);
}

int64_t QdrantBackend::delete_ids(const std::string& dataset, const std::vector<std::string>& ids) {
  require(dataset);
  std::vector<json> existing;
  for (auto& rec : retrieve(m_client, dataset, distinct_point_ids(ids), false, false)) {
    existing.push_back(std::move(rec.at("id")));
  }
  if (!existing.empty()) {
    delete_points(m_client, dataset, existing);
    invalidate(dataset);
  }
  return static_cast<int64_t>(existing.size());
}

int64_t QdrantBackend::delete_where(const std::string& dataset, const Filter& filter) {
  const Record record = require(dataset);
  const TranslatedFilter tf = translate_filter(&filter, has_filter_aids(record), &record.spec);
  int64_t n = 0;
  bool done = false;
  if (tf.exact) {
    try {
      n = m_client.call(count_call(dataset, tf.filter)).at("count").get<int64_t>();
      if (n > 0) {
        const json body = {{"filter", tf.filter}};
        m_client.call({"POST", collection_path(dataset) + "/points/delete" + std::string(k_wait), body.dump()});
      }
      done = true;
    } catch (const UsageError& e) {
      if (!is_index_required(e)) {
        throw;
      }
    }
  }
  if (!done) {
    // Page by page: a page's matches are deleted before the next page is read (the scroll
    // offset is the id after the page, which the deletes do not touch).
    for_each_match_page(dataset, filter, tf, [&](const std::vector<json>& ids) {
      n += static_cast<int64_t>(ids.size());
      delete_points(m_client, dataset, ids);
    });
  }
  invalidate(dataset);
  return n;
}

}  // namespace vstash::backends::qdrant
