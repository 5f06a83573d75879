// SPDX-License-Identifier: MIT
// The cache tier's binary forms (contract in cachecodec.hpp).
#include "backends/common/cachecodec.hpp"

#include <cstring>

#include "backends/common/rowcodec.hpp"
#include "src/errors.hpp"

namespace vstash::backends::cachecodec {

namespace {

class Writer {
 public:
  void u64(uint64_t v) { m_out.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void f64(double v) {
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    u64(bits);
  }
  void bytes(std::string_view s) {
    u64(s.size());
    m_out.append(s);
  }
  void raw(std::span<const std::byte> s) { bytes(std::string_view(reinterpret_cast<const char*>(s.data()), s.size())); }
  void doc(const json& j) {
    const auto packed = json::to_msgpack(j);
    bytes(std::string_view(reinterpret_cast<const char*>(packed.data()), packed.size()));
  }
  // dtype, row shape and the bytes of row i of a.
  void row_of(const Array& a, size_t i) {
    u64(static_cast<uint64_t>(a.dtype()));
    const Shape shape = a.row_shape();
    u64(shape.size());
    for (const int64_t d : shape) {
      i64(d);
    }
    raw(a.row(static_cast<int64_t>(i)));
  }
  std::string take() { return std::move(m_out); }

 private:
  std::string m_out;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : m_in(in) {}
  uint64_t u64() {
    need(8);
    uint64_t v = 0;
    std::memcpy(&v, m_in.data() + m_at, 8);
    m_at += 8;
    return v;
  }
  int64_t i64() { return static_cast<int64_t>(u64()); }
  double f64() {
    const uint64_t bits = u64();
    double v = 0;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  std::string_view bytes() {
    const auto n = u64();
    need(n);
    auto s = m_in.substr(m_at, n);
    m_at += n;
    return s;
  }
  json doc() {
    const auto s = bytes();
    return json::from_msgpack(s.begin(), s.end());
  }
  struct RowPart {
    DType dtype = DType::f32;
    Shape shape;
    std::string_view bytes;
  };
  RowPart row_part() {
    RowPart p;
    const auto t = u64();
    if (t > static_cast<uint64_t>(DType::b1)) {
      throw Error("cache: corrupt row");
    }
    p.dtype = static_cast<DType>(t);
    const auto n = u64();
    if (n > 32) {
      throw Error("cache: corrupt row");
    }
    for (uint64_t i = 0; i < n; ++i) {
      p.shape.push_back(i64());
    }
    p.bytes = bytes();
    return p;
  }
  bool done() const { return m_at == m_in.size(); }

 private:
  void need(uint64_t n) const {
    if (n > m_in.size() - m_at) {
      throw Error("cache: truncated value");
    }
  }
  std::string_view m_in;
  size_t m_at = 0;
};

// An n-row array of the part's dtype and shape.
Array rows_array(const Reader::RowPart& first, size_t n) {
  Shape shape{static_cast<int64_t>(n)};
  shape.insert(shape.end(), first.shape.begin(), first.shape.end());
  Array a(first.dtype, shape);
  if (a.row_bytes() != first.bytes.size()) {
    throw Error("cache: corrupt row");
  }
  return a;
}

void put_row(Array& a, size_t i, const Reader::RowPart& part) {
  if (part.dtype != a.dtype() || part.shape != a.row_shape() || part.bytes.size() != a.row_bytes()) {
    throw Error("cache: rows of a batch disagree");
  }
  std::memcpy(a.row(static_cast<int64_t>(i)).data(), part.bytes.data(), part.bytes.size());
}

}  // namespace

std::string encode_batch(const RowBatch& b) {
  Writer w;
  w.u64(b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    w.bytes(b.ids[i]);
    w.i64(b.indices.empty() ? -1 : b.indices[i]);
    w.doc(b.metadata.empty() ? json() : b.metadata[i]);
  }
  w.bytes(encode_array(b.data));
  w.u64(b.labels ? 1 : 0);
  if (b.labels) {
    w.bytes(encode_array(*b.labels));
  }
  return w.take();
}

RowBatch decode_batch(std::string_view s) {
  Reader r(s);
  RowBatch b;
  const auto n = r.u64();
  for (uint64_t i = 0; i < n; ++i) {
    b.ids.emplace_back(r.bytes());
    b.indices.push_back(r.i64());
    b.metadata.push_back(r.doc());
  }
  b.data = decode_array(r.bytes());
  if (r.u64() == 1) {
    b.labels = decode_array(r.bytes());
  }
  return b;
}

std::string encode_row(const RowBatch& b, size_t i) {
  Writer w;
  w.bytes(b.ids[i]);
  w.i64(b.indices.empty() ? -1 : b.indices[i]);
  w.doc(b.metadata.empty() ? json() : b.metadata[i]);
  w.row_of(b.data, i);
  w.u64(b.labels ? 1 : 0);
  if (b.labels) {
    w.row_of(*b.labels, i);
  }
  return w.take();
}

RowBatch decode_rows(const std::vector<std::string_view>& rows) {
  RowBatch b;
  std::optional<Array> labels;
  for (size_t i = 0; i < rows.size(); ++i) {
    Reader r(rows[i]);
    b.ids.emplace_back(r.bytes());
    b.indices.push_back(r.i64());
    b.metadata.push_back(r.doc());
    const auto data = r.row_part();
    const bool has_label = r.u64() == 1;
    if (i == 0) {
      b.data = rows_array(data, rows.size());
    }
    put_row(b.data, i, data);
    if (has_label != (i == 0 ? has_label : labels.has_value())) {
      throw Error("cache: rows of a batch disagree");
    }
    if (has_label) {
      const auto label = r.row_part();
      if (i == 0) {
        labels = rows_array(label, rows.size());
      }
      put_row(*labels, i, label);
    }
    if (!r.done()) {
      throw Error("cache: corrupt row");
    }
  }
  b.labels = std::move(labels);
  return b;
}

std::string encode_hits(const std::vector<QueryHit>& hits) {
  Writer w;
  w.u64(hits.size());
  for (const auto& h : hits) {
    w.bytes(h.id);
    w.i64(h.index);
    w.f64(h.score);
    w.u64(h.values ? 1 : 0);
    if (h.values) {
      w.bytes(std::string_view(reinterpret_cast<const char*>(h.values->data()), h.values->size() * sizeof(float)));
    }
    w.doc(h.metadata);
  }
  return w.take();
}

std::vector<QueryHit> decode_hits(std::string_view s) {
  Reader r(s);
  const auto n = r.u64();
  if (n > s.size()) {
    throw Error("cache: corrupt hits");
  }
  std::vector<QueryHit> hits(n);
  for (auto& h : hits) {
    h.id = r.bytes();
    h.index = r.i64();
    h.score = r.f64();
    if (r.u64() == 1) {
      const auto v = r.bytes();
      h.values.emplace(v.size() / sizeof(float));
      std::memcpy(h.values->data(), v.data(), h.values->size() * sizeof(float));
    }
    h.metadata = r.doc();
  }
  return hits;
}

std::string encode_checkpoint(const Checkpoint& c) {
  Writer w;
  w.bytes(c.model);
  w.i64(c.epoch);
  w.bytes(c.created_at);
  w.doc(metrics_to_json(c.metrics));
  w.doc(c.metadata);
  w.u64(c.arrays.size());
  for (const auto& [name, a] : c.arrays) {
    w.bytes(name);
    w.bytes(encode_array(a));
  }
  return w.take();
}

Checkpoint decode_checkpoint(std::string_view s) {
  Reader r(s);
  Checkpoint c;
  c.model = r.bytes();
  c.epoch = r.i64();
  c.created_at = r.bytes();
  c.metrics = metrics_from_json(r.doc());
  c.metadata = r.doc();
  const auto n = r.u64();
  for (uint64_t i = 0; i < n; ++i) {
    std::string name(r.bytes());
    c.arrays.emplace(std::move(name), decode_array(r.bytes()));
  }
  return c;
}

std::string encode_info(const DatasetInfo& info) {
  const auto& s = info.spec;
  const json j = {{"name", s.name},
                  {"dtype", dtype_name(s.dtype)},
                  {"row_shape", s.row_shape},
                  {"label_dtype", s.label_dtype ? json(dtype_name(*s.label_dtype)) : json()},
                  {"label_shape", s.label_shape},
                  {"metric", metric_name(s.metric)},
                  {"metadata", s.metadata},
                  {"rows", info.rows},
                  {"next_index", info.next_index},
                  {"bytes", info.bytes},
                  {"extra", info.extra}};
  Writer w;
  w.doc(j);
  return w.take();
}

DatasetInfo decode_info(std::string_view value) {
  Reader r(value);
  const json j = r.doc();
  DatasetInfo info;
  auto& s = info.spec;
  s.name = j.at("name").get<std::string>();
  s.dtype = parse_dtype_name(j.at("dtype").get<std::string>());
  s.row_shape = j.at("row_shape").get<Shape>();
  if (!j.at("label_dtype").is_null()) {
    s.label_dtype = parse_dtype_name(j.at("label_dtype").get<std::string>());
  }
  s.label_shape = j.at("label_shape").get<Shape>();
  s.metric = parse_metric(j.at("metric").get<std::string>());
  s.metadata = j.at("metadata");
  info.rows = j.at("rows").get<int64_t>();
  info.next_index = j.at("next_index").get<int64_t>();
  info.bytes = j.at("bytes").get<int64_t>();
  info.extra = j.at("extra");
  return info;
}

}  // namespace vstash::backends::cachecodec
