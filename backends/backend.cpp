// SPDX-License-Identifier: MIT
#include "backends/backend.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>

#include "src/errors.hpp"

namespace vstash::backends {

std::string_view metric_name(Metric m) {
  switch (m) {
    case Metric::cosine:
      return "cosine";
    case Metric::euclidean:
      return "euclidean";
    case Metric::dot:
      return "dot";
  }
  return "cosine";
}

Metric parse_metric(std::string_view s) {
  if (s == "cosine" || s == "angular") {
    return Metric::cosine;
  }
  if (s == "euclidean" || s == "euclid" || s == "l2") {
    return Metric::euclidean;
  }
  if (s == "dot" || s == "dotproduct" || s == "ip" || s == "inner_product") {
    return Metric::dot;
  }
  throw UsageError(fmt::format("unknown metric \"{}\" (expected cosine, euclidean or dot)", s));
}

void validate_model_name(const std::string& model) {
  const bool ok = !model.empty() && model.size() <= 128 && std::all_of(model.begin(), model.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
  if (!ok) {
    throw UsageError(fmt::format("model name \"{}\": use 1 to 128 letters, digits, '.', '_' or '-'", model));
  }
}

void check_dataset_name(const std::string& name) {
  if (name.empty()) {
    throw UsageError("dataset name must not be empty");
  }
  if (name.size() > k_max_dataset_name_bytes) {
    throw UsageError(fmt::format("dataset name \"{}...\" is {} bytes long (at most {})", name.substr(0, 32),
                                 name.size(), k_max_dataset_name_bytes));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) {
      throw UsageError(fmt::format("dataset name has a control character (byte {} is 0x{:02x})", i, c));
    }
  }
}

void check_catalog_spec(const DatasetSpec& spec, std::string_view what) {
  for (const Shape* shape : {&spec.row_shape, &spec.label_shape}) {
    for (const int64_t d : *shape) {
      // Zero is as corrupt as negative: datasets are created with positive dimensions only
      // (backends/common/rowcheck.cpp), and a zero-element row would decode into an empty buffer.
      if (d < 1 || d > k_max_catalog_row_elements) {
        throw Error(fmt::format("{}: corrupt shape {}", what, shape_to_string(*shape)));
      }
    }
    if (shape_product(*shape) > k_max_catalog_row_elements) {
      throw Error(fmt::format("{}: shape {} has more than {} elements per row", what, shape_to_string(*shape),
                              k_max_catalog_row_elements));
    }
  }
}

CheckpointRef CheckpointRef::parse(const std::string& path) {
  const auto at = path.rfind('@');
  CheckpointRef ref;
  ref.model = path.substr(0, at);
  if (at == std::string::npos) {
    throw UsageError(fmt::format("checkpoint \"{}\": expected MODEL@EPOCH or MODEL@latest", path));
  }
  validate_model_name(ref.model);
  const std::string tail = path.substr(at + 1);
  if (tail == "latest") {
    return ref;
  }
  int64_t epoch = 0;
  auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), epoch);
  if (ec != std::errc() || p != tail.data() + tail.size() || epoch < 0 || tail.empty()) {
    throw UsageError(
        fmt::format("checkpoint \"{}\": epoch \"{}\" is not a non-negative integer or \"latest\"", path, tail));
  }
  ref.epoch = epoch;
  return ref;
}

std::string CheckpointRef::to_string() const { return epoch ? checkpoint_path(model, *epoch) : model + "@latest"; }

std::string checkpoint_path(const std::string& model, int64_t epoch) { return fmt::format("{}@{}", model, epoch); }

void throw_checkpoint_exists(const std::string& location, const std::string& path) {
  throw ConflictError(
      fmt::format("{}: checkpoint \"{}\" already exists (use --overwrite to replace it)", location, path));
}

json metrics_to_json(const std::map<std::string, double>& metrics) {
  json out = json::object();
  for (const auto& [k, v] : metrics) {
    out[k] = std::isfinite(v) ? json(v) : json(nullptr);
  }
  return out;
}

std::map<std::string, double> metrics_from_json(const json& j) {
  std::map<std::string, double> out;
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      out[k] = v.is_number() ? v.get<double>() : std::nan("");
    }
  }
  return out;
}

std::string now_rfc3339() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::vector<std::vector<QueryHit>> RowStore::query_many(const std::string& dataset, const std::vector<float>& queries,
                                                        size_t n, const QueryOptions& options) {
  if (n == 0) {
    return {};
  }
  if (queries.size() % n != 0) {
    throw UsageError(fmt::format("dataset \"{}\": {} query values do not make {} queries", dataset, queries.size(), n));
  }
  const size_t dim = queries.size() / n;
  std::vector<std::vector<QueryHit>> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto first = queries.begin() + static_cast<std::ptrdiff_t>(i * dim);
    out.push_back(query(dataset, std::vector<float>(first, first + static_cast<std::ptrdiff_t>(dim)), options));
  }
  return out;
}

}  // namespace vstash::backends
