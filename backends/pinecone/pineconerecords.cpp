// SPDX-License-Identifier: MIT
// How vstash rows and catalog entries become Pinecone records and back.
//
// A row record: id = the row id (hashed past 512 bytes), values = the row's float32 view,
// metadata = user metadata + "_idx" (its index) + "_label" (base64 rowcodec of the label) +
// "_lval" (a scalar label as label_value() gives it, finite values only, for $label filters) +
// "_data" (base64 rowcodec of the exact sample, only when dtype != float32 or the row is not
// 1-D) + "_id" (the original id when hashed) + "_zero" (an all-zero row: Pinecone refuses
// all-zero dense vectors, so the smallest normal float stands in for element 0) + "_json" (the
// user values Pinecone cannot hold natively, e.g. nested objects, as one JSON string).
#include <fmt/format.h>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/common/catalog.hpp"
#include "backends/common/rowcodec.hpp"
#include "backends/pinecone/pineconeinternal.hpp"
#include "src/errors.hpp"
#include "src/io/untrusted.hpp"
#include "src/util/base64.hpp"
#include "src/util/floatformat.hpp"
#include "src/util/uuid.hpp"

namespace vstash::backends::pinecone {

namespace {

Shape parse_shape(const json& j) {
  const json a = j.is_string() ? json::parse(j.get<std::string>()) : j;
  return a.get<Shape>();
}

std::string blob(const Array& a) {
  const std::string raw = encode_array(a);
  return util::base64_encode(std::span(reinterpret_cast<const std::byte*>(raw.data()), raw.size()));
}

Array unblob(const json& j, const std::string& what) {
  if (!j.is_string()) {
    throw Error(fmt::format("pinecone record \"{}\": metadata key is not a base64 string", what));
  }
  const auto bytes = util::base64_decode(j.get<std::string>());
  return decode_array(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace

std::string stored_id(const std::string& id) {
  return id.size() <= k_max_id_bytes ? id : "vstash-sha1:" + util::sha1_hex(id);
}

std::string unit_vector_json(int64_t dimension) {
  std::string out = "[1";
  for (int64_t i = 1; i < dimension; ++i) {
    out += ",0";
  }
  out += ']';
  return out;
}

std::string placeholder_record(const std::string& id, int64_t dimension, const json& metadata) {
  return fmt::format("{{\"id\":{},\"values\":{},\"metadata\":{}}}", json(id).dump(), unit_vector_json(dimension),
                     metadata.dump());
}

std::string catalog_record(const CatalogEntry& e, int64_t dimension) {
  const json spec = catalog::spec_to_json(e.spec);
  json md = {{"kind", "dataset"},          {"dataset", e.spec.name},
             {"dtype", spec["dtype"]},     {"shape", spec["row_shape"].dump()},
             {"metric", spec["metric"]},   {"metadata", spec["metadata"].dump()},
             {"next_index", e.next_index}, {"row_bytes", e.row_bytes}};
  if (e.label_field) {
    md["label_field"] = true;
  }
  if (e.writers) {
    md["writers"] = true;
  }
  if (e.spec.label_dtype) {
    md["label_dtype"] = spec["label_dtype"];
    md["label_shape"] = spec["label_shape"].dump();
  }
  return placeholder_record(stored_id(e.spec.name), dimension, md);
}

CatalogEntry parse_catalog(const json& md) {
  CatalogEntry e;
  std::string what = "pinecone catalog record";
  try {
    const std::string name = md.at("dataset").get<std::string>();
    what = fmt::format("pinecone catalog record of dataset \"{}\"", name);
    json spec = {{"dtype", md.at("dtype")},
                 {"row_shape", parse_shape(md.at("shape"))},
                 {"metric", md.at("metric")},
                 {"metadata", json::parse(md.value("metadata", std::string("{}")))}};
    if (md.contains("label_dtype")) {
      spec["label_dtype"] = md.at("label_dtype");
      spec["label_shape"] = parse_shape(md.at("label_shape"));
    }
    e.spec = catalog::spec_from_json(name, spec, what);
    e.next_index = md.contains("next_index") ? decode_row_index(md["next_index"], "pinecone catalog next_index") : 0;
    e.row_bytes = md.contains("row_bytes") ? decode_row_index(md["row_bytes"], "pinecone catalog row_bytes") : 0;
    e.label_field = md.contains("label_field") && md["label_field"].is_boolean() && md["label_field"].get<bool>();
    e.writers = md.contains("writers") && md["writers"].is_boolean() && md["writers"].get<bool>();
  } catch (const json::exception& ex) {
    throw Error(fmt::format("{}: corrupt catalog entry: {}", what, io::json_error_text(ex)));
  }
  return e;
}

bool keeps_exact_blob(const DatasetSpec& spec) { return spec.dtype != DType::f32 || spec.row_shape.size() != 1; }

json row_metadata(const DatasetSpec& spec, const std::string& id, int64_t index, const Array& sample_row,
                  const Array* label_row, const json& user) {
  json md = json::object();
  json encoded = json::object();
  if (user.is_object()) {
    for (const auto& [k, v] : user.items()) {
      (is_native_value(v) ? md : encoded)[k] = v;
    }
  }
  if (!encoded.empty()) {
    md["_json"] = encoded.dump();
  }
  md["_idx"] = index;
  if (label_row != nullptr) {
    md["_label"] = blob(*label_row);
    if (spec.label_shape.empty()) {
      json v = label_value(label_row->dtype(), label_row->data());
      if (!v.is_number_float() || std::isfinite(v.get<double>())) {
        md["_lval"] = std::move(v);
      }
    }
  }
  if (keeps_exact_blob(spec)) {
    md["_data"] = blob(sample_row);
  }
  if (id.size() > k_max_id_bytes) {
    md["_id"] = id;
  }
  const size_t bytes = metadata_bytes(md);
  if (bytes > k_max_metadata_bytes) {
    throw UsageError(
        fmt::format("dataset \"{}\": row \"{}\": record metadata is {} bytes serialized (user metadata, "
                    "label and exact sample together), over pinecone's {}-byte limit",
                    spec.name, id.substr(0, 80), bytes, k_max_metadata_bytes));
  }
  return md;
}

EncodedRows encode_rows(const DatasetSpec& spec, const RowBatch& batch, const std::vector<int64_t>& indices) {
  EncodedRows out;
  const Shape row_shape = batch.data.row_shape();
  const int64_t dim = shape_product(row_shape);
  std::vector<float> values;
  out.records.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto r = static_cast<int64_t>(i);
    const std::string& id = batch.ids[i];
    const json user = batch.metadata.empty() ? json() : batch.metadata[i];
    check_user_metadata(user, spec.name, id);
    const auto row_bytes = batch.data.row(r);
    Array sample(batch.data.dtype(), row_shape, std::vector<std::byte>(row_bytes.begin(), row_bytes.end()));
    std::optional<Array> label;
    if (batch.labels) {
      const auto lb = batch.labels->row(r);
      label = Array(batch.labels->dtype(), batch.labels->row_shape(), std::vector<std::byte>(lb.begin(), lb.end()));
    }
    json md = row_metadata(spec, id, indices[i], sample, label ? &*label : nullptr, user);
    values = batch.data.row_as_float32(r);
    bool all_zero = true;
    for (float v : values) {
      all_zero = all_zero && v == 0.0F;
    }
    if (all_zero && dim > 0) {
      values[0] = std::numeric_limits<float>::min();
      md["_zero"] = true;
    }
    std::string rec = "{\"id\":" + json(stored_id(id)).dump() + ",\"values\":";
    util::append_float_array(rec, values.data(), values.size());
    rec += ",\"metadata\":";
    rec += md.dump();
    rec += '}';
    out.max_bytes = std::max(out.max_bytes, rec.size());
    out.stored_ids.push_back(stored_id(id));
    out.records.push_back(std::move(rec));
  }
  return out;
}

namespace {

DecodedRow decode_row_fields(const DatasetSpec& spec, const json& record) {
  DecodedRow row;
  const json& md = record.contains("metadata") && record["metadata"].is_object() ? record["metadata"] : json::object();
  row.id = md.contains("_id") ? md["_id"].get<std::string>() : record.at("id").get<std::string>();
  row.index = md.contains("_idx") ? decode_row_index(md["_idx"], fmt::format("pinecone record \"{}\"", row.id)) : -1;
  if (keeps_exact_blob(spec)) {
    row.sample = md.contains("_data") ? unblob(md["_data"], row.id) : Array(spec.dtype, spec.row_shape);
  } else {
    row.sample = Array(DType::f32, spec.row_shape);
    const bool zero = md.value("_zero", false);
    const json& values = record.contains("values") ? record["values"] : json::array();
    float* out = row.sample.as<float>();
    const auto n = static_cast<size_t>(row.sample.size());
    if (!zero && values.size() != n) {
      throw Error(fmt::format("pinecone record \"{}\": {} values, dataset \"{}\" rows have {}", row.id, values.size(),
                              spec.name, n));
    }
    for (size_t i = 0; i < n && !zero; ++i) {
      out[i] = values[i].get<float>();
    }
  }
  if (md.contains("_label")) {
    row.label = unblob(md["_label"], row.id);
  }
  json user = json::object();
  for (const auto& [k, v] : md.items()) {
    if (!is_reserved_key(k)) {
      user[k] = v;
    }
  }
  user = normalize_numbers(std::move(user));
  if (md.contains("_json") && md["_json"].is_string()) {
    user.update(json::parse(md["_json"].get<std::string>()));
  }
  row.metadata = user.empty() ? json() : std::move(user);
  return row;
}

}  // namespace

DecodedRow decode_row(const DatasetSpec& spec, const json& record) {
  // A record that passed the reply's shape check can still hold fields of the wrong type;
  // say which dataset's record was malformed, in our words.
  try {
    return decode_row_fields(spec, record);
  } catch (const json::exception& e) {
    throw Error(fmt::format("pinecone: dataset \"{}\": malformed record from the server: {}", spec.name,
                            io::json_error_text(e)));
  }
}

RowBatch assemble_rows(const DatasetSpec& spec, std::vector<DecodedRow>& rows) {
  RowBatch b;
  Shape shape{static_cast<int64_t>(rows.size())};
  shape.insert(shape.end(), spec.row_shape.begin(), spec.row_shape.end());
  b.data = Array(spec.dtype, shape);
  if (spec.label_dtype) {
    Shape ls{static_cast<int64_t>(rows.size())};
    ls.insert(ls.end(), spec.label_shape.begin(), spec.label_shape.end());
    b.labels = Array(*spec.label_dtype, ls);
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& r = rows[i];
    const auto dst = b.data.row(static_cast<int64_t>(i));
    if (r.sample.nbytes() != dst.size() || r.sample.dtype() != spec.dtype) {
      throw Error(fmt::format("pinecone record \"{}\": stored sample does not match dataset \"{}\" ({})", r.id,
                              spec.name, catalog::describe(spec)));
    }
    std::memcpy(dst.data(), r.sample.data(), dst.size());
    if (b.labels && r.label) {
      const auto ldst = b.labels->row(static_cast<int64_t>(i));
      if (r.label->nbytes() == ldst.size()) {
        std::memcpy(ldst.data(), r.label->data(), ldst.size());
      }
    }
    b.ids.push_back(std::move(r.id));
    b.indices.push_back(r.index);
    b.metadata.push_back(std::move(r.metadata));
  }
  return b;
}

}  // namespace vstash::backends::pinecone
