// SPDX-License-Identifier: MIT
#include "backends/qdrant/qdrantcatalog.hpp"

#include <fmt/format.h>

#include <string_view>
#include <utility>

#include "backends/qdrant/qdrantpoints.hpp"
#include "src/errors.hpp"
#include "src/util/uuid.hpp"

namespace vstash::backends::qdrant {

namespace {

constexpr std::string_view k_catalog = "__vstash_catalog";
constexpr std::string_view k_reserved_prefix = "__vstash_";
constexpr std::string_view k_writers = "__vstash_writers";

std::string catalog_collection() { return std::string(k_catalog); }

json catalog_point_id(const std::string& dataset) { return json(util::uuid_v5(k_id_namespace, "dataset:" + dataset)); }

std::string label_index_schema(DType t) {
  return t == DType::f16 || t == DType::f32 || t == DType::f64 ? "float" : "integer";
}

json payload_of(const catalog::DatasetRecord& r) {
  json p = {{"name", r.spec.name},
            {"spec", catalog::spec_to_json(r.spec)},
            {"next_index", r.next_index},
            {"filter_aids", has_filter_aids(r)}};
  if (catalog::has_parts(r)) {
    p["writers"] = true;
  }
  return p;
}

json part_point_id(const std::string& dataset, const std::string& writer) {
  return json(util::uuid_v5(k_id_namespace, "writer:" + json::array({dataset, writer}).dump()));
}

json parts_filter(const std::string& dataset) {
  return json{{"must", json::array({json{{"key", "dataset"}, {"match", json{{"value", dataset}}}}})}};
}

catalog::DatasetRecord record_of(const json& point) {
  const json& p = point.at("payload");
  const std::string name = p.value("name", std::string());
  catalog::DatasetRecord r;
  r.spec = catalog::spec_from_json(name, p.value("spec", json::object()), fmt::format("dataset \"{}\"", name));
  r.next_index = p.value("next_index", int64_t{0});
  r.extra = {{"filter_aids", p.value("filter_aids", false)}};
  if (p.value("writers", false)) {
    r.extra["writers"] = true;
  }
  r.version = p.dump();
  return r;
}

}  // namespace

void validate_dataset_name(const std::string& name) {
  if (name.empty() || name.size() > 255) {
    throw UsageError(fmt::format("dataset \"{}\": a qdrant collection name has 1 to 255 bytes", name));
  }
  for (char c : name) {
    if (std::string_view("<>:\"/\\|?*").find(c) != std::string_view::npos || c == '\0' || c == '\x1f') {
      throw UsageError(fmt::format("dataset \"{}\": a qdrant collection name cannot contain '{}'", name,
                                   c == '\0' ? std::string("\\0") : std::string(1, c)));
    }
  }
  if (name.rfind(k_reserved_prefix, 0) == 0) {
    throw UsageError(fmt::format("dataset \"{}\": names starting with \"{}\" are reserved", name, k_reserved_prefix));
  }
}

bool has_filter_aids(const catalog::DatasetRecord& record) {
  return record.extra.is_object() && record.extra.value("filter_aids", false);
}

std::optional<catalog::DatasetRecord> QdrantDatasets::shared_get(const std::string& name) {
  validate_dataset_name(name);
  std::vector<json> found;
  try {
    found = retrieve(m_client, catalog_collection(), {catalog_point_id(name)}, true, false);
  } catch (const NotFoundError&) {
    return std::nullopt;  // no catalog collection yet: no datasets
  }
  if (found.empty()) {
    return std::nullopt;
  }
  return placed(record_of(found[0]));
}

std::vector<catalog::DatasetRecord> QdrantDatasets::shared_list() {
  std::vector<json> points;
  try {
    points = scroll_all(m_client, catalog_collection(),
                        json{{"limit", 1000}, {"with_payload", true}, {"with_vector", false}});
  } catch (const NotFoundError&) {
    return {};
  }
  std::vector<catalog::DatasetRecord> out;
  for (const auto& p : points) {
    out.push_back(placed(record_of(p)));
  }
  return out;
}

bool QdrantDatasets::shared_insert(const catalog::DatasetRecord& record) {
  ensure_collection(record.spec);
  put(record);
  return true;
}

bool QdrantDatasets::shared_compare_and_set(const catalog::DatasetRecord& /*seen*/,
                                            const catalog::DatasetRecord& next) {
  put(next);
  return true;
}

bool QdrantDatasets::shared_remove(const std::string& name) {
  const auto record = shared_get(name);
  if (record && m_client.placement().enabled()) {
    // The shard key first: a drop interrupted after it leaves the record, and drop runs again.
    const std::string collection = collection_of(record->spec);
    try {
      m_client.call({"POST", collection_path(collection) + "/shards/delete", json{{"shard_key", name}}.dump()});
    } catch (const UsageError& e) {
      if (std::string_view(e.what()).find("not exist") == std::string_view::npos) {
        throw;
      }
    } catch (const NotFoundError&) {
    }
    m_client.placement().forget(name);
  }
  if (record) {
    delete_points(m_client, catalog_collection(), {catalog_point_id(name)});
  }
  if (!m_client.placement().enabled()) {
    // Also removes a collection left behind by an interrupted drop. 200 with false if absent.
    m_client.call({"DELETE", collection_path(name), ""});
  }
  std::lock_guard lock(m_mutex);
  m_ensured.erase(name);
  return record.has_value();
}

void QdrantDatasets::put(const catalog::DatasetRecord& record) {
  ensure_catalog();
  const json point = {{"id", catalog_point_id(record.spec.name)}, {"vector", {1.0}}, {"payload", payload_of(record)}};
  upsert_bodies(m_client, catalog_collection(), {json{{"points", json::array({point})}}.dump()});
}

std::vector<catalog::WriterPart> QdrantDatasets::load_parts(const std::string& name) {
  std::vector<json> points;
  try {
    points = scroll_all(
        m_client, std::string(k_writers),
        json{{"limit", 1000}, {"with_payload", true}, {"with_vector", false}, {"filter", parts_filter(name)}});
  } catch (const NotFoundError&) {
    return {};  // no writer has written a part yet
  }
  std::vector<catalog::WriterPart> parts;
  const std::string what = fmt::format("dataset \"{}\"", name);
  for (const auto& p : points) {
    parts.push_back(catalog::part_from_json(p.value("payload", json::object()), what));
  }
  return parts;
}

void QdrantDatasets::save_part(const std::string& name, const catalog::WriterPart& part) {
  if (!m_writers_ready) {
    create_collection(m_client, std::string(k_writers), 1, "Dot");
    create_payload_index(m_client, std::string(k_writers), "dataset", "keyword");
    m_writers_ready = true;
  }
  json payload = catalog::part_to_json(part);
  payload["dataset"] = name;
  const json point = {{"id", part_point_id(name, part.writer)}, {"vector", {1.0}}, {"payload", payload}};
  upsert_bodies(m_client, std::string(k_writers), {json{{"points", json::array({point})}}.dump()});
}

void QdrantDatasets::drop_parts(const std::string& name) {
  std::vector<json> ids;
  for (const auto& part : load_parts(name)) {
    ids.push_back(part_point_id(name, part.writer));
  }
  if (!ids.empty()) {
    delete_points(m_client, std::string(k_writers), ids);
  }
}

void QdrantDatasets::ensure_catalog() {
  if (!m_catalog_ready) {
    create_collection(m_client, catalog_collection(), 1, "Dot");
    m_catalog_ready = true;
  }
}

std::string QdrantDatasets::collection_of(const DatasetSpec& spec) const {
  const auto& placement = m_client.placement();
  return placement.enabled() ? placement.collection_for(spec.dimension(), distance_name(spec.metric)) : spec.name;
}

catalog::DatasetRecord QdrantDatasets::placed(catalog::DatasetRecord record) {
  if (m_client.placement().enabled()) {
    m_client.placement().remember(record.spec.name, collection_of(record.spec));
  }
  return record;
}

// A collection that exists costs one GET (its info lists the payload indexes already there),
// a new one the create and the index PUTs; under custom sharding, also the shard key's PUT.
void QdrantDatasets::ensure_collection(const DatasetSpec& spec) {
  {
    std::lock_guard lock(m_mutex);
    if (m_ensured.count(spec.name) != 0) {
      return;
    }
  }
  const std::string collection = collection_of(spec);
  const bool custom = m_client.placement().enabled();
  prepare_collection(collection, spec, custom);
  if (custom) {
    try {
      m_client.call({"PUT", collection_path(collection) + "/shards", json{{"shard_key", spec.name}}.dump()});
    } catch (const UsageError& e) {
      if (std::string_view(e.what()).find("already exists") == std::string_view::npos) {
        throw;
      }
    }
    m_client.placement().remember(spec.name, collection);
  }
  std::lock_guard lock(m_mutex);
  m_ensured.insert(spec.name);
}

void QdrantDatasets::prepare_collection(const std::string& collection, const DatasetSpec& spec, bool custom) {
  const std::string distance = distance_name(spec.metric);
  const Call get_info{"GET", collection_path(collection), ""};
  auto info = m_client.call_or_missing(get_info);
  if (!info && !create_collection(m_client, collection, spec.dimension(), distance, custom)) {
    info = m_client.call(get_info);  // created meanwhile by another process: check it as found
  }
  json schema = json::object();
  if (info) {
    const json params = info->value("config", json::object()).value("params", json::object());
    const json vectors = params.value("vectors", json());
    if (!vectors.is_object() || vectors.value("size", int64_t{0}) != spec.dimension() ||
        vectors.value("distance", std::string()) != distance) {
      throw ConflictError(fmt::format("{}: collection \"{}\" exists with vectors {}; dataset needs size {} distance {}",
                                      m_client.location(), collection, vectors.dump(), spec.dimension(), distance));
    }
    if (custom && params.value("sharding_method", json()) != "custom") {
      throw ConflictError(
          fmt::format("{}: collection \"{}\" exists without custom sharding; dataset \"{}\" needs it "
                      "(shard_key: auto)",
                      m_client.location(), collection, spec.name));
    }
    schema = info->value("payload_schema", json::object());
  }
  std::vector<std::pair<std::string, std::string>> indexes{
      {"_id", "keyword"}, {"_idx", "integer"}, {"_keys", "keyword"}};
  if (spec.label_dtype && spec.label_shape.empty()) {
    indexes.emplace_back("label", label_index_schema(*spec.label_dtype));
  }
  for (const auto& [field, type] : indexes) {
    if (!schema.is_object() || !schema.contains(field)) {
      create_payload_index(m_client, collection, field, type);
    }
  }
}

}  // namespace vstash::backends::qdrant
