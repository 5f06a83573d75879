// SPDX-License-Identifier: MIT
#include "backends/common/catalog.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "backends/common/contention.hpp"
#include "src/io/untrusted.hpp"

namespace vstash::backends::catalog {

bool compatible(const DatasetSpec& stored, const DatasetSpec& requested) {
  return stored.dtype == requested.dtype && stored.row_shape == requested.row_shape &&
         stored.label_dtype == requested.label_dtype &&
         (!stored.label_dtype || stored.label_shape == requested.label_shape) && stored.metric == requested.metric;
}

std::string describe(const DatasetSpec& spec) {
  const std::string labels =
      spec.label_dtype ? fmt::format("labels {} {}", dtype_name(*spec.label_dtype), shape_to_string(spec.label_shape))
                       : "no labels";
  return fmt::format("{} {} {}, {}", dtype_name(spec.dtype), shape_to_string(spec.row_shape), metric_name(spec.metric),
                     labels);
}

ConflictError spec_conflict(const std::string& location, const DatasetSpec& stored, const DatasetSpec& requested) {
  return ConflictError(fmt::format("{}: dataset \"{}\" exists as {}; requested {}", location, requested.name,
                                   describe(stored), describe(requested)));
}

NotFoundError dataset_not_found(const std::string& location, const std::string& name) {
  return NotFoundError(fmt::format("{}: dataset \"{}\" does not exist", location, name));
}

void require_compatible(const std::string& location, const DatasetSpec& stored, const DatasetSpec& requested) {
  if (!compatible(stored, requested)) {
    throw spec_conflict(location, stored, requested);
  }
}

json spec_to_json(const DatasetSpec& spec) {
  return json{{"dtype", dtype_name(spec.dtype)},
              {"row_shape", spec.row_shape},
              {"label_dtype", spec.label_dtype ? json(dtype_name(*spec.label_dtype)) : json()},
              {"label_shape", spec.label_shape},
              {"metric", metric_name(spec.metric)},
              {"metadata", spec.metadata.is_object() ? spec.metadata : json::object()}};
}

// A stored shape of integers: a float such as 3.3e25 would be undefined behaviour to convert.
static Shape integer_shape(const json& j) {
  if (!j.is_array()) {
    throw json::type_error::create(302, "shape is not an array", &j);
  }
  for (const json& d : j) {
    if (!d.is_number_integer()) {
      throw json::type_error::create(302, "shape holds a non-integer", &j);
    }
  }
  return j.get<Shape>();
}

DatasetSpec spec_from_json(const std::string& name, const json& j, const std::string& what) {
  try {
    DatasetSpec s;
    s.name = name;
    s.dtype = parse_dtype_name(j.at("dtype").get<std::string>());
    s.row_shape = integer_shape(j.at("row_shape"));
    s.metric = parse_metric(j.at("metric").get<std::string>());
    // Older records (Redis before the catalog) leave the label keys out without labels.
    if (j.contains("label_dtype") && !j.at("label_dtype").is_null()) {
      s.label_dtype = parse_dtype_name(j.at("label_dtype").get<std::string>());
      s.label_shape = integer_shape(j.at("label_shape"));
    }
    const json metadata = j.value("metadata", json::object());
    s.metadata = metadata.is_object() ? metadata : json::object();
    check_catalog_spec(s, what);
    return s;
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: corrupt catalog entry: {}", what, io::json_error_text(e)));
  } catch (const UsageError& e) {
    // An unknown dtype or metric name in a stored record is corruption, not the user's input.
    throw Error(fmt::format("{}: corrupt catalog entry: {}", what, e.what()));
  }
}

json merged_metadata(const json& stored, const json& requested) {
  json merged = stored.is_object() ? stored : json::object();
  if (requested.is_object()) {
    merged.update(requested);
  }
  return merged;
}

bool Catalog::create(const DatasetSpec& spec, DatasetRecord fresh) {
  for (int attempt = 0; attempt < k_catalog_attempts; ++attempt) {
    std::optional<DatasetRecord> stored = m_records.get(spec.name);
    if (!stored) {
      fresh.spec = spec;
      fresh.spec.metadata = merged_metadata(json::object(), spec.metadata);
      if (m_records.insert(fresh)) {
        return true;
      }
      continue;  // made by another process meanwhile: check it as a stored one
    }
    require_compatible(m_records.location(), stored->spec, spec);
    DatasetRecord next = *stored;
    next.spec.metadata = merged_metadata(stored->spec.metadata, spec.metadata);
    if (next.spec.metadata == stored->spec.metadata || m_records.compare_and_set(*stored, next)) {
      return false;
    }
    contention_pause(attempt);
  }
  throw ConflictError(fmt::format("{}: dataset \"{}\": gave up after {} attempts: concurrent writers keep changing it",
                                  m_records.location(), spec.name, k_catalog_attempts));
}

DatasetRecord Catalog::require(const std::string& name) {
  std::optional<DatasetRecord> stored = m_records.get(name);
  if (!stored) {
    throw dataset_not_found(m_records.location(), name);
  }
  return std::move(*stored);
}

template <class Change>
DatasetRecord Catalog::update(const std::string& name, Change&& change) {
  for (int attempt = 0; attempt < k_catalog_attempts; ++attempt) {
    DatasetRecord stored = require(name);
    DatasetRecord next = stored;
    change(next);
    if (next.next_index == stored.next_index || m_records.compare_and_set(stored, next)) {
      return stored;
    }
    contention_pause(attempt);
  }
  throw ConflictError(fmt::format("{}: dataset \"{}\": gave up after {} attempts: concurrent writers keep changing it",
                                  m_records.location(), name, k_catalog_attempts));
}

int64_t Catalog::reserve(const std::string& name, int64_t n) {
  if (n < 0) {
    throw UsageError(fmt::format("dataset \"{}\": cannot reserve {} indices", name, n));
  }
  return update(name, [n](DatasetRecord& r) { r.next_index += n; }).next_index;
}

void Catalog::advance(const std::string& name, int64_t end) {
  update(name, [end](DatasetRecord& r) { r.next_index = std::max(r.next_index, end); });
}

}  // namespace vstash::backends::catalog
