// SPDX-License-Identifier: MIT
// The Pinecone store's writes: upserts of rows (write_rows), one row's update, deletes by id
// and by filter. Rows become records as pineconerecords.cpp says; every write returns once
// visible when the profile says `wait` (pineconeindexes.hpp).
#include <fmt/format.h>

#include <algorithm>

#include "backends/common/rowcheck.hpp"
#include "backends/pinecone/pineconestore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pinecone {

namespace {

std::vector<std::string> stored_ids(const std::vector<std::string>& ids) {
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (const auto& id : ids) {
    out.push_back(stored_id(id));
  }
  return out;
}

// The indices of existing_indices with each new row's -1 numbered from first, in order.
std::vector<int64_t> numbered(std::vector<int64_t> indices, int64_t first) {
  for (int64_t& index : indices) {
    index = index < 0 ? first++ : index;
  }
  return indices;
}

// update_row's sample and metadata, checked as on every store.
void check_update(const DatasetSpec& spec, const std::string& id, const std::optional<Array>& sample,
                  const std::optional<json>& metadata) {
  if (sample) {
    Shape batch_shape{1};  // a one-row batch is accepted too, as on every store
    batch_shape.insert(batch_shape.end(), spec.row_shape.begin(), spec.row_shape.end());
    if (sample->dtype() != spec.dtype || (sample->shape() != spec.row_shape && sample->shape() != batch_shape)) {
      throw UsageError(fmt::format("dataset \"{}\": row \"{}\": sample must be {} of shape {}, got {} of shape {}",
                                   spec.name, id, dtype_name(spec.dtype), shape_to_string(spec.row_shape),
                                   dtype_name(sample->dtype()), shape_to_string(sample->shape())));
    }
    check_finite(*sample, {id}, spec.name);
  }
  if (metadata && !metadata->is_null() && !metadata->is_object()) {
    throw UsageError(fmt::format("dataset \"{}\": row \"{}\": metadata must be a JSON object", spec.name, id));
  }
}

// A row's user metadata after update_row's changes (a null value deletes a key).
struct MetadataChange {
  json merged;
  json patch = json::object();  // the keys set, for setMetadata
  bool deletes_key = false;
  bool encoded_value = false;  // a value kept in "_json": the record is rewritten whole
};

MetadataChange apply_changes(const json& current, const std::optional<json>& metadata) {
  MetadataChange out;
  out.merged = current.is_object() ? current : json::object();
  const json changes = metadata && metadata->is_object() ? *metadata : json::object();
  for (const auto& [k, v] : changes.items()) {  // named: items() of a temporary dangles
    if (v.is_null()) {
      out.merged.erase(k);
      out.deletes_key = true;
    } else {
      out.merged[k] = v;
      out.patch[k] = v;
      out.encoded_value = out.encoded_value || !is_native_value(v);
    }
  }
  return out;
}

// The updated row as a batch of one, to encode as write_rows does.
RowBatch one_row(const DatasetSpec& spec, const std::string& id, const DecodedRow& row, const Array& sample,
                 const json& metadata) {
  RowBatch one;
  one.ids = {id};
  one.indices = {row.index};
  Shape shape{1};
  shape.insert(shape.end(), spec.row_shape.begin(), spec.row_shape.end());
  one.data = Array(spec.dtype, shape, std::vector<std::byte>(sample.bytes().begin(), sample.bytes().end()));
  if (row.label) {
    Shape ls{1};
    ls.insert(ls.end(), row.label->shape().begin(), row.label->shape().end());
    one.labels =
        Array(row.label->dtype(), ls, std::vector<std::byte>(row.label->bytes().begin(), row.label->bytes().end()));
  }
  one.metadata = {metadata.empty() ? json() : metadata};
  return one;
}

}  // namespace

// The stored index of each row whose id exists (an upsert replaces the row in place), -1 for a
// new id; no lookup when the dataset has never held a row.
std::vector<int64_t> PineconeBackend::existing_indices(const CatalogEntry& entry, const RowBatch& batch) {
  std::map<std::string, json> existing;
  if (entry.next_index > 0) {
    existing = m_indexes.fetch(m_indexes.of(entry.spec), m_indexes.namespace_of(entry.spec.name), stored_ids(batch.ids),
                               entry.row_bytes);
  }
  std::vector<int64_t> indices(batch.size(), -1);
  for (size_t i = 0; i < batch.size(); ++i) {
    auto it = existing.find(stored_id(batch.ids[i]));
    const json md = it == existing.end() ? json() : it->second.value("metadata", json::object());
    if (md.contains("_idx")) {
      indices[i] = static_cast<int64_t>(md["_idx"].get<double>());
    }
  }
  return indices;
}

void PineconeBackend::write_rows(const std::string& dataset, const RowBatch& batch) {
  const catalog::DatasetRecord record = m_catalog.require(dataset);
  const CatalogEntry entry = DatasetTable::entry(record);
  check_batch(entry.spec, batch);
  if (batch.size() == 0) {
    return;
  }
  // Ingest passes indices; other writers' new ids are numbered from next_index, reserved below.
  const std::vector<int64_t> known = batch.indices.empty() ? existing_indices(entry, batch) : std::vector<int64_t>();
  const auto fresh = std::count(known.begin(), known.end(), int64_t{-1});
  std::vector<int64_t> indices = batch.indices.empty() ? numbered(known, entry.next_index) : batch.indices;
  EncodedRows rows = encode_rows(entry.spec, batch, indices);  // refuses a bad row before anything is sent
  // The counters move before the rows are sent: readers size their requests by row_bytes, and
  // next_index only moves forward (a write that fails leaves a gap, as a reservation does).
  if (fresh > 0) {
    if (const int64_t first = m_catalog.reserve(dataset, fresh); first != entry.next_index) {
      indices = numbered(known, first);  // another writer took those indices meanwhile
      rows = encode_rows(entry.spec, batch, indices);
    }
  }
  const int64_t end = batch.indices.empty() ? 0 : *std::max_element(indices.begin(), indices.end()) + 1;
  m_datasets.raise_counters(record, end, static_cast<int64_t>(rows.max_bytes));
  m_indexes.upsert(m_indexes.of(entry.spec), m_indexes.namespace_of(dataset), rows.records);
  invalidate(dataset);
  m_indexes.settle();
}

void PineconeBackend::update_row(const std::string& dataset, const std::string& id, const std::optional<Array>& sample,
                                 const std::optional<json>& metadata) {
  const CatalogEntry entry = require(dataset);
  const std::string sid = stored_id(id);
  const std::string ns = m_indexes.namespace_of(dataset);
  Connection& c = m_indexes.of(entry.spec);
  const auto records = m_indexes.fetch(c, ns, {sid}, entry.row_bytes);
  if (records.empty()) {
    throw NotFoundError(fmt::format("{}: dataset \"{}\": id \"{}\" does not exist", c.location(), dataset, id));
  }
  const json& current = records.begin()->second;
  const DecodedRow row = decode_row(entry.spec, current);
  check_update(entry.spec, id, sample, metadata);
  const MetadataChange change = apply_changes(row.metadata, metadata);
  check_user_metadata(change.merged, dataset, id);
  const RowBatch one = one_row(entry.spec, id, row, sample ? *sample : row.sample, change.merged);
  const EncodedRows enc = encode_rows(entry.spec, one, one.indices);  // also checks the 40 KB limit
  const json& meta_now = current.value("metadata", json::object());
  const bool was_zero = meta_now.value("_zero", false);
  const bool is_zero = enc.records[0].find("\"_zero\":true") != std::string::npos;
  if (change.deletes_key || change.encoded_value || meta_now.contains("_json") || was_zero || is_zero ||
      (sample && keeps_exact_blob(entry.spec))) {
    // setMetadata can only add or overwrite native keys: rewrite the whole record instead.
    m_indexes.upsert(c, ns, enc.records);
  } else if (sample || !change.patch.empty()) {
    json body = {{"id", sid}, {"namespace", ns}};
    if (sample) {
      body["values"] = one.data.row_as_float32(0);  // the whole row (one.data is a batch of one)
    }
    if (!change.patch.empty()) {
      body["setMetadata"] = change.patch;
    }
    c.post("/vectors/update", body.dump());
  }
  m_indexes.settle();
}

int64_t PineconeBackend::delete_ids(const std::string& dataset, const std::vector<std::string>& ids) {
  const CatalogEntry entry = require(dataset);
  const std::string ns = m_indexes.namespace_of(dataset);
  Connection& c = m_indexes.of(entry.spec);
  std::vector<std::string> gone;
  for (const auto& [sid, record] : m_indexes.fetch(c, ns, stored_ids(ids), entry.row_bytes)) {
    gone.push_back(sid);
  }
  m_indexes.remove(c, ns, gone);
  invalidate(dataset);
  m_indexes.settle();
  return static_cast<int64_t>(gone.size());
}

int64_t PineconeBackend::delete_where(const std::string& dataset, const Filter& filter) {
  const CatalogEntry entry = require(dataset);
  const json f = translate_filter(filter, &entry);
  int64_t n = f.is_null() ? count(dataset, nullptr) : 0;
  for (int64_t c : f.is_null() ? std::vector<int64_t>() : window_counts(entry, &f)) {
    n += c;
  }
  if (n > 0) {
    json body = {{"namespace", m_indexes.namespace_of(dataset)}};
    if (f.is_null()) {
      body["deleteAll"] = true;
    } else {
      body["filter"] = f;
    }
    m_indexes.of(entry.spec).post("/vectors/delete", body.dump());
    invalidate(dataset);
    m_indexes.settle();
  }
  return n;
}

}  // namespace vstash::backends::pinecone
