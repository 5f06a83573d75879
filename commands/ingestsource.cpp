// SPDX-License-Identifier: MIT
// Opening and validating ingest inputs.
#include "commands/ingestsource.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/io/hdf5.hpp"
#include "src/io/jsonl.hpp"

namespace vstash::commands {

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// JSONL records -> one float32 array (+ labels, ids, metadata).
void load_jsonl(const std::string& path, std::optional<Array>& data, std::optional<Array>& labels,
                std::vector<std::string>& ids, std::vector<nlohmann::json>& metadata) {
  const auto records = io::read_jsonl(path);
  if (records.empty()) {
    throw UsageError(fmt::format("{}: no records", path));
  }
  const size_t dim = records[0].vector.size();
  const bool has_ids = records[0].id.has_value();
  const bool has_labels = !records[0].label.is_null();
  bool all_int = true;
  std::vector<double> values, label_values;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (r.vector.size() != dim) {
      throw UsageError(fmt::format("{}:{}: vector has {} values, line 1 has {}", path, i + 1, r.vector.size(), dim));
    }
    if (r.id.has_value() != has_ids || r.label.is_null() == has_labels) {
      throw UsageError(fmt::format("{}:{}: every record needs the same fields (id, label) as line 1", path, i + 1));
    }
    if (has_labels && !r.label.is_number() && !r.label.is_boolean()) {
      throw UsageError(fmt::format("{}:{}: label must be a number or bool", path, i + 1));
    }
    values.insert(values.end(), r.vector.begin(), r.vector.end());
    if (has_labels) {
      all_int = all_int && !r.label.is_number_float();
      label_values.push_back(r.label.get<double>());
    }
    if (has_ids) {
      ids.push_back(*r.id);
    }
    metadata.push_back(r.metadata);
  }
  const auto n = static_cast<int64_t>(records.size());
  data = make_array(DType::f32, {n, static_cast<int64_t>(dim)}, values);
  if (has_labels) {
    labels = make_array(all_int ? DType::i64 : DType::f64, {n}, label_values);
  }
}

void check_ids(const std::string& file, const std::vector<std::string>& ids) {
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].empty()) {
      throw UsageError(fmt::format("{}: row {}: empty id", file, i));
    }
    if (!seen.insert(ids[i]).second) {
      throw UsageError(fmt::format("{}: row {}: duplicate id \"{}\"", file, i, ids[i]));
    }
  }
}

}  // namespace

IngestSource IngestSource::open(const IngestFiles& files) {
  IngestSource src;
  src.m_name = files.data;
  if (ends_with(files.data, ".jsonl") || ends_with(files.data, ".ndjson")) {
    load_jsonl(files.data, src.m_whole, src.m_labels, src.m_ids, src.m_metadata);
  } else {
    auto loc = io::ArrayLocation::parse(files.data);
    if (loc.is_hdf5) {
      // An ann-benchmarks file: /train, /test, /neighbors and a root `distance` attribute. Its
      // distance is the metric whether the path is named (FILE.h5:/train) or not (FILE.h5).
      const auto attrs = io::read_hdf5_file_attributes(loc.file);
      const auto sets = io::list_hdf5_datasets(loc.file);
      if (attrs.contains("distance") && std::find(sets.begin(), sets.end(), "/train") != sets.end()) {
        const std::string distance = attrs["distance"].is_string() ? attrs["distance"].get<std::string>() : "";
        if (distance != "angular" && distance != "euclidean") {
          throw UsageError(fmt::format("{}: ann-benchmarks distance \"{}\" is not supported (angular or euclidean)",
                                       loc.file, distance));
        }
        if (loc.dataset.empty()) {
          loc.dataset = "/train";
        }
        src.m_metric = backends::parse_metric(distance);
        src.m_remark = fmt::format("{}: ann-benchmarks file: ingesting {} with metric {} (distance \"{}\")", loc.file,
                                   loc.dataset, backends::metric_name(*src.m_metric), distance);
        src.m_name = loc.to_string();
      }
    }
    src.m_reader = io::open_array(loc.to_string());
    if (src.m_reader->shape().empty()) {
      throw UsageError(fmt::format("{}: a 0-d array has no rows to ingest", src.m_name));
    }
  }
  const int64_t n = src.rows();
  if (!files.labels.empty()) {
    src.m_labels = io::read_array(files.labels);
    if (src.m_labels->ndim() == 0 || src.m_labels->rows() != n) {
      throw UsageError(fmt::format("{}: {} labels for {} data rows", files.labels,
                                   src.m_labels->ndim() == 0 ? 0 : src.m_labels->rows(), n));
    }
  }
  if (!files.ids.empty()) {
    src.m_ids = io::read_strings(files.ids);
  }
  if (!src.m_ids.empty()) {
    const std::string& where = files.ids.empty() ? files.data : files.ids;
    if (static_cast<int64_t>(src.m_ids.size()) != n) {
      throw UsageError(fmt::format("{}: {} ids for {} data rows", where, src.m_ids.size(), n));
    }
    check_ids(where, src.m_ids);
  }
  if (!files.metadata.empty()) {
    src.m_metadata = io::read_jsonl_objects(files.metadata);
    if (static_cast<int64_t>(src.m_metadata.size()) != n) {
      throw UsageError(fmt::format("{}: {} metadata lines for {} data rows", files.metadata, src.m_metadata.size(), n));
    }
  }
  return src;
}

DType IngestSource::dtype() const { return m_reader ? m_reader->dtype() : m_whole->dtype(); }
Shape IngestSource::row_shape() const {
  const Shape& s = m_reader ? m_reader->shape() : m_whole->shape();
  return Shape(s.begin() + 1, s.end());
}
int64_t IngestSource::rows() const { return m_reader ? m_reader->rows() : m_whole->rows(); }

backends::RowBatch IngestSource::read(int64_t first, int64_t count, int64_t base) {
  count = std::min(count, rows() - first);
  backends::RowBatch b;
  b.data = m_reader ? m_reader->read_rows(first, count) : m_whole->slice_rows(first, count);
  count = b.data.rows();
  for (int64_t r = first; r < first + count; ++r) {
    const auto i = static_cast<size_t>(r);
    b.ids.push_back(m_ids.empty() ? std::to_string(base + r) : m_ids[i]);
    b.indices.push_back(base + r);
    b.metadata.push_back(m_metadata.empty() ? nlohmann::json() : m_metadata[i]);
  }
  if (m_labels) {
    b.labels = m_labels->slice_rows(first, count);
  }
  return b;
}

void IngestSource::check_finite_all(int64_t block_rows) {
  if (!dtype_is_float(dtype())) {
    return;
  }
  std::vector<int64_t> bad;
  if (m_reader) {
    bad = m_reader->nonfinite_rows(block_rows);
  } else {
    m_whole->append_nonfinite_rows(0, bad);
  }
  if (!bad.empty()) {
    std::string rows_text;
    for (size_t i = 0; i < std::min<size_t>(bad.size(), 5); ++i) {
      rows_text += fmt::format("{}{}", i ? ", " : "", bad[i]);
    }
    throw UsageError(fmt::format("{}: {} row(s) contain NaN or Inf (rows {}{})", m_name, bad.size(), rows_text,
                                 bad.size() > 5 ? ", ..." : ""));
  }
}

void ShardFlags::add_to(CLI::App& sub, const std::string& env, const std::string& what) {
  sub.add_option("--rank", shard.rank,
                 fmt::format("With --world-size: {} only slice R, rows [R*N/W, (R+1)*N/W) of N, at the indices "
                             "and ids a single process gives them; resumable on its own",
                             what))
      ->envname(fmt::format("VSTASH_{}_RANK", env))
      ->each([this](const std::string&) { rank_given = true; });
  sub.add_option("--world-size", shard.world_size, "Number of processes sharing the rows (each with its own --rank)")
      ->envname(fmt::format("VSTASH_{}_WORLD_SIZE", env))
      ->each([this](const std::string&) { world_size_given = true; });
}

void ShardFlags::check() const {
  if (rank_given != world_size_given) {
    throw UsageError(rank_given ? "--rank: give --world-size too" : "--world-size: give --rank too");
  }
  if (world_size_given) {
    check_range("--world-size", shard.world_size, 1, int64_t{1} << 20);
    check_range("--rank", shard.rank, 0, shard.world_size - 1);
  }
}

void ShardFlags::name_writer(backends::Backend& store) const { store.set_writer(ingest::writer_name(shard)); }

}  // namespace vstash::commands
