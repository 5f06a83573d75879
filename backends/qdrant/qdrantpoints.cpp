// SPDX-License-Identifier: MIT
// Point ids, payloads and the hot path of ingest: point JSON written by hand with
// floatformat (shortest round-trip text) rather than through a json tree.
#include "backends/qdrant/qdrantpoints.hpp"

#include <fmt/format.h>
#include <charconv>
#include <cstring>
#include <optional>
#include <set>
#include <span>

#include "backends/common/rowcodec.hpp"
#include "backends/http/httpclient.hpp"
#include "src/errors.hpp"
#include "src/filter.hpp"
#include "src/io/untrusted.hpp"
#include "src/util/base64.hpp"
#include "src/util/floatformat.hpp"
#include "src/util/uuid.hpp"

namespace vstash::backends::qdrant {

namespace {

constexpr std::string_view k_body_head = "{\"points\":[";
constexpr std::string_view k_body_tail = "]}";

std::optional<uint64_t> canonical_decimal(const std::string& id) {
  if (id.empty() || id.size() > 20 || (id.size() > 1 && id[0] == '0')) {
    return std::nullopt;
  }
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(id.data(), id.data() + id.size(), v);
  if (ec != std::errc() || ptr != id.data() + id.size()) {
    return std::nullopt;
  }
  return v;
}

std::string json_text(const json& j, std::string_view what) {
  try {
    return j.dump();
  } catch (const json::type_error&) {
    throw UsageError(fmt::format("{}: not valid UTF-8", what));
  }
}

// A label element as src/filter.hpp's label_value reads it, but a bool as 1/0: the stored
// payload has kept numbers since the first release, and a $label filter compares them.
json element_json(const Array& a, int64_t i) {
  json v = label_value(a.dtype(), a.data() + static_cast<size_t>(i) * dtype_size(a.dtype()));
  return v.is_boolean() ? json(v.get<bool>() ? 1 : 0) : v;
}

void put_element(Array& a, int64_t i, const json& v) {
  std::byte* p = a.data() + static_cast<size_t>(i) * dtype_size(a.dtype());
  auto put = [p]<class T>(T x) { std::memcpy(p, &x, sizeof x); };
  switch (a.dtype()) {
    case DType::f16:
      put(float_to_half(v.get<float>()));
      break;
    case DType::f32:
      put(v.get<float>());
      break;
    case DType::f64:
      put(v.get<double>());
      break;
    case DType::i8:
      put(v.get<int8_t>());
      break;
    case DType::i16:
      put(v.get<int16_t>());
      break;
    case DType::i32:
      put(v.get<int32_t>());
      break;
    case DType::i64:
      put(v.get<int64_t>());
      break;
    case DType::u8:
      put(v.get<uint8_t>());
      break;
    case DType::u16:
      put(v.get<uint16_t>());
      break;
    case DType::u32:
      put(v.get<uint32_t>());
      break;
    case DType::u64:
      put(v.get<uint64_t>());
      break;
    case DType::b1:
      put(static_cast<uint8_t>(v.is_boolean() ? v.get<bool>() : v.get<int64_t>() != 0));
      break;
  }
}

const json& payload_of(const json& record) {
  static const json empty = json::object();
  auto it = record.find("payload");
  return it != record.end() && it->is_object() ? *it : empty;
}

}  // namespace

json point_id(const std::string& id) {
  if (auto n = canonical_decimal(id)) {
    return json(*n);
  }
  if (auto u = util::canonical_uuid(id)) {
    return json(*u);
  }
  return json(util::uuid_v5(k_id_namespace, id));
}

std::string point_key(const json& pid) {
  if (pid.is_string()) {
    auto u = util::canonical_uuid(pid.get<std::string>());
    return u ? *u : pid.get<std::string>();
  }
  return pid.dump();
}

std::vector<json> distinct_point_ids(const std::vector<std::string>& ids) {
  std::vector<json> pids;
  std::set<std::string> keys;
  for (const auto& id : ids) {
    json pid = point_id(id);
    if (keys.insert(point_key(pid)).second) {
      pids.push_back(std::move(pid));
    }
  }
  return pids;
}

std::string distance_name(Metric metric) {
  switch (metric) {
    case Metric::cosine:
      return "Cosine";
    case Metric::euclidean:
      return "Euclid";
    case Metric::dot:
      return "Dot";
  }
  return "Cosine";
}

json filter_aids(const json& metadata) {
  json out = json::object();
  if (!metadata.is_object() || metadata.empty()) {
    return out;
  }
  json keys = json::array();
  json num = json::object();
  for (const auto& [k, v] : metadata.items()) {
    if (!v.is_null()) {
      keys.push_back(k);
    }
    if (v.is_number()) {
      num[k] = v;
    }
  }
  out["_keys"] = std::move(keys);
  out["_num"] = std::move(num);
  return out;
}

bool needs_data_blob(const DatasetSpec& spec) { return spec.dtype != DType::f32 || spec.metric == Metric::cosine; }

std::vector<std::string> encode_points(const DatasetSpec& spec, const RowBatch& batch,
                                       const std::vector<int64_t>& indices) {
  std::vector<std::string> out(batch.size());
  encode_points_range(spec, batch, indices, 0, batch.size(), out);
  return out;
}

void encode_points_range(const DatasetSpec& spec, const RowBatch& batch, const std::vector<int64_t>& indices,
                         size_t begin, size_t end, std::vector<std::string>& out) {
  const bool blob = needs_data_blob(spec);
  const auto dim = static_cast<size_t>(spec.dimension());
  const int64_t label_n = spec.label_dtype ? shape_product(spec.label_shape) : 0;
  std::vector<float> scratch;
  for (size_t i = begin; i < end; ++i) {
    const auto row = static_cast<int64_t>(i);
    std::string& s = out[i];
    s.reserve(dim * 12 + 128);
    s += "{\"id\":";
    s += point_id(batch.ids[i]).dump();
    s += ",\"vector\":";
    if (batch.data.dtype() == DType::f32) {
      util::append_float_array(s, batch.data.as<float>() + i * dim, dim);
    } else {
      scratch = batch.data.row_as_float32(row);
      util::append_float_array(s, scratch.data(), dim);
    }
    s += ",\"payload\":{\"_id\":";
    s += json_text(json(batch.ids[i]), fmt::format("row id #{}", i));
    s += ",\"_idx\":";
    s += std::to_string(indices[i]);
    if (!batch.metadata.empty() && batch.metadata[i].is_object() && !batch.metadata[i].empty()) {
      s += ",\"metadata\":";
      s += json_text(batch.metadata[i], fmt::format("row \"{}\": metadata", batch.ids[i]));
      const json aids = filter_aids(batch.metadata[i]);  // named: items() of a temporary dangles
      for (const auto& [key, value] : aids.items()) {
        s += ",\"" + key + "\":";
        s += json_text(value, fmt::format("row \"{}\": metadata", batch.ids[i]));
      }
    }
    if (batch.labels) {
      s += ",\"label\":";
      if (spec.label_shape.empty()) {
        s += element_json(*batch.labels, row).dump();
      } else {
        json arr = json::array();
        for (int64_t k = 0; k < label_n; ++k) {
          arr.push_back(element_json(*batch.labels, row * label_n + k));
        }
        s += arr.dump();
      }
    }
    if (blob) {
      s += ",\"_data\":\"";
      const std::string blob_bytes = encode_array(batch.data.slice_rows(row, 1));
      s += util::base64_encode(std::as_bytes(std::span(blob_bytes.data(), blob_bytes.size())));
      s += '"';
    }
    s += "}}";
  }
}

std::vector<std::string> pack_points(const std::vector<std::string>& points, size_t max_points, size_t max_bytes) {
  std::vector<size_t> sizes;
  sizes.reserve(points.size());
  for (const auto& p : points) {
    sizes.push_back(p.size());
  }
  std::vector<std::string> bodies;
  for (auto [begin, end] : http::plan_batches(sizes, max_points, max_bytes, k_body_head.size() + k_body_tail.size())) {
    size_t total = k_body_head.size() + k_body_tail.size() + (end - begin);
    for (size_t i = begin; i < end; ++i) {
      total += sizes[i];
    }
    std::string body;
    body.reserve(total);
    body += k_body_head;
    for (size_t i = begin; i < end; ++i) {
      if (i > begin) {
        body += ',';
      }
      body += points[i];
    }
    body += k_body_tail;
    bodies.push_back(std::move(body));
  }
  return bodies;
}

std::vector<float> record_values(const DatasetSpec& spec, const json& record) {
  const json& payload = payload_of(record);
  auto data = payload.find("_data");
  if (data != payload.end() && data->is_string()) {
    const auto raw = util::base64_decode(data->get<std::string>());
    return decode_array(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size())).row_as_float32(0);
  }
  auto v = record.find("vector");
  if (v == record.end() || !v->is_array() || v->size() != static_cast<size_t>(spec.dimension())) {
    throw Error(fmt::format("dataset \"{}\": point without its vector", spec.name));
  }
  return v->get<std::vector<float>>();
}

RowBatch decode_records(const DatasetSpec& spec, const std::vector<const json*>& records, bool with_samples) {
  RowBatch b;
  const auto n = static_cast<int64_t>(records.size());
  Shape shape{n};
  shape.insert(shape.end(), spec.row_shape.begin(), spec.row_shape.end());
  b.data = Array(spec.dtype, shape);
  if (spec.label_dtype) {
    Shape ls{n};
    ls.insert(ls.end(), spec.label_shape.begin(), spec.label_shape.end());
    b.labels = Array(*spec.label_dtype, ls);
  }
  const int64_t label_n = spec.label_dtype ? shape_product(spec.label_shape) : 0;
  const size_t row_bytes = static_cast<size_t>(spec.dimension()) * dtype_size(spec.dtype);
  for (int64_t r = 0; r < n; ++r) {
    const json& rec = *records[static_cast<size_t>(r)];
    const json& payload = payload_of(rec);
    try {
      b.ids.push_back(payload.at("_id").get<std::string>());
      b.indices.push_back(decode_row_index(payload.at("_idx"), fmt::format("dataset \"{}\" point", spec.name)));
      auto md = payload.find("metadata");
      b.metadata.push_back(md != payload.end() && md->is_object() ? *md : json::object());
      if (b.labels) {
        const json& label = payload.at("label");
        if (spec.label_shape.empty()) {
          put_element(*b.labels, r, label);
        } else {
          for (int64_t k = 0; k < label_n; ++k) {
            put_element(*b.labels, r * label_n + k, label.at(static_cast<size_t>(k)));
          }
        }
      }
    } catch (const json::exception& e) {
      throw Error(fmt::format("dataset \"{}\": corrupt point payload: {}", spec.name, io::json_error_text(e)));
    }
    if (!with_samples) {
      continue;
    }
    std::byte* dst = b.data.data() + static_cast<size_t>(r) * row_bytes;
    auto data = payload.find("_data");
    if (data != payload.end() && data->is_string()) {
      const auto raw = util::base64_decode(data->get<std::string>());
      Array row = decode_array(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
      if (row.dtype() != spec.dtype || row.nbytes() != row_bytes) {
        throw Error(fmt::format("dataset \"{}\": row \"{}\": stored sample does not match the dataset spec", spec.name,
                                b.ids.back()));
      }
      std::memcpy(dst, row.data(), row_bytes);
    } else {
      auto v = rec.find("vector");
      if (spec.dtype != DType::f32 || v == rec.end() || !v->is_array() ||
          v->size() != static_cast<size_t>(spec.dimension())) {
        throw Error(fmt::format("dataset \"{}\": row \"{}\": point has no usable vector", spec.name, b.ids.back()));
      }
      auto* out = reinterpret_cast<float*>(dst);
      for (size_t k = 0; k < v->size(); ++k) {
        out[k] = (*v)[k].get<float>();
      }
    }
  }
  return b;
}

}  // namespace vstash::backends::qdrant
