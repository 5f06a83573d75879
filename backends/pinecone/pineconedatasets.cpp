// SPDX-License-Identifier: MIT
#include "backends/pinecone/pineconedatasets.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "src/errors.hpp"
#include "src/util/uuid.hpp"

namespace vstash::backends::pinecone {

CatalogEntry DatasetTable::entry(const catalog::DatasetRecord& record) {
  CatalogEntry e;
  e.spec = record.spec;
  e.next_index = record.next_index;
  e.row_bytes = record.extra.value("row_bytes", int64_t{0});
  e.label_field = record.extra.value("label_field", false);
  e.writers = catalog::has_parts(record);
  return e;
}

catalog::DatasetRecord DatasetTable::record(const CatalogEntry& entry, std::string version) {
  catalog::DatasetRecord r;
  r.spec = entry.spec;
  r.next_index = entry.next_index;
  r.version = std::move(version);
  r.extra = {{"row_bytes", entry.row_bytes}, {"label_field", entry.label_field}};
  if (entry.writers) {
    r.extra["writers"] = true;
  }
  return r;
}

std::optional<json> DatasetTable::fetch_stored(const std::string& name) {
  try {
    m_indexes.home().index();
  } catch (const NotFoundError&) {
    return std::nullopt;  // no home index yet: no dataset either (it is created on first write)
  }
  const auto records = m_indexes.fetch(m_indexes.home(), m_indexes.catalog_ns(), {stored_id(name)}, 0);
  if (records.empty()) {
    return std::nullopt;
  }
  return records.begin()->second.value("metadata", json::object());
}

CatalogEntry DatasetTable::merge_local(CatalogEntry e) {
  std::lock_guard lock(m_mutex);
  if (auto it = m_written.find(e.spec.name); it != m_written.end()) {
    e.next_index = std::max(e.next_index, it->second.next_index);
    e.row_bytes = std::max(e.row_bytes, it->second.row_bytes);
    e.writers = e.writers || it->second.writers;  // parts seen by this process are not lost to a lagging read
  }
  return e;
}

void DatasetTable::save(const CatalogEntry& entry) {
  m_indexes.upsert(m_indexes.home(), m_indexes.catalog_ns(), {catalog_record(entry, m_indexes.home_dimension())});
  std::lock_guard lock(m_mutex);
  m_written[entry.spec.name] = entry;
}

std::optional<catalog::DatasetRecord> DatasetTable::shared_get(const std::string& name) {
  m_indexes.namespace_of(name);  // a reserved name is refused before any request
  const std::optional<json> stored = fetch_stored(name);
  if (!stored) {
    // Written by this process but not visible yet; the version says "not stored".
    std::lock_guard lock(m_mutex);
    auto it = m_written.find(name);
    return it == m_written.end() ? std::nullopt : std::optional(record(it->second));
  }
  return record(merge_local(parse_catalog(*stored)), stored->dump());
}

std::vector<catalog::DatasetRecord> DatasetTable::shared_list() {
  std::vector<catalog::DatasetRecord> out;
  for (const json& rec : m_indexes.fetch_all(m_indexes.home(), m_indexes.catalog_ns(), "", 0)) {
    const json md = rec.value("metadata", json::object());
    out.push_back(record(merge_local(parse_catalog(md)), md.dump()));
  }
  return out;
}

bool DatasetTable::shared_insert(const catalog::DatasetRecord& fresh) {
  m_indexes.settle();  // the check must see this process's earlier writes (see compare_and_set)
  if (fetch_stored(fresh.spec.name)) {
    return false;
  }
  save(entry(fresh));
  return true;
}

bool DatasetTable::shared_compare_and_set(const catalog::DatasetRecord& seen, const catalog::DatasetRecord& next) {
  // The compare must see this process's own earlier writes: a read lagging them would match a
  // `seen` read before them, and the write would undo them (write_rows' reserve, then its
  // raise_counters from the record read before: next_index back to 0).
  m_indexes.settle();
  const std::optional<json> stored = fetch_stored(seen.spec.name);
  if ((stored ? stored->dump() : std::string()) != seen.version) {
    return false;
  }
  // With `wait: false` settle is a no-op and the compare can still match a lagging record: the
  // counters never go below what this process last wrote (they only grow), so its own
  // reservation is never undone.
  save(merge_local(entry(next)));
  return true;
}

void DatasetTable::raise_counters(catalog::DatasetRecord seen, int64_t end, int64_t row_bytes) {
  for (int attempt = 0; attempt < catalog::k_catalog_attempts; ++attempt) {
    catalog::DatasetRecord next = seen;
    next.next_index = std::max(seen.next_index, end);
    next.extra["row_bytes"] = std::max(seen.extra.value("row_bytes", int64_t{0}), row_bytes);
    if (next.next_index == seen.next_index && next.extra == seen.extra) {
      return;
    }
    if (compare_and_set(seen, next)) {
      return;
    }
    std::optional<catalog::DatasetRecord> again = get(seen.spec.name);
    if (!again) {
      throw catalog::dataset_not_found(location(), seen.spec.name);
    }
    seen = std::move(*again);
  }
  throw ConflictError(fmt::format("{}: dataset \"{}\": gave up after {} attempts: concurrent writers keep changing it",
                                  location(), seen.spec.name, catalog::k_catalog_attempts));
}

bool DatasetTable::shared_remove(const std::string& name) {
  const std::optional<catalog::DatasetRecord> stored = shared_get(name);
  if (!stored) {
    return false;
  }
  try {
    m_indexes.of(stored->spec)
        .post("/vectors/delete", json{{"deleteAll", true}, {"namespace", m_indexes.namespace_of(name)}}.dump());
  } catch (const NotFoundError&) {
    // Pinecone answers 404 for a namespace that never received a row.
  }
  m_indexes.remove(m_indexes.home(), m_indexes.catalog_ns(), {stored_id(name)});
  std::lock_guard lock(m_mutex);
  m_written.erase(name);
  return true;
}

std::string DatasetTable::parts_ns() const { return m_indexes.catalog_ns() + "writers__"; }

std::vector<json> DatasetTable::stored_parts(const std::string& name) {
  try {
    m_indexes.home().index();
  } catch (const NotFoundError&) {
    return {};
  }
  return m_indexes.fetch_all(m_indexes.home(), parts_ns(), util::sha1_hex(name) + "/", 0);
}

std::vector<catalog::WriterPart> DatasetTable::load_parts(const std::string& name) {
  std::vector<catalog::WriterPart> parts;
  const std::string what = fmt::format("pinecone writer record of dataset \"{}\"", name);
  for (const json& rec : stored_parts(name)) {
    const json md = rec.value("metadata", json::object());
    const json part = json::parse(md.value("part", std::string()), nullptr, false);
    if (part.is_discarded()) {
      throw Error(fmt::format("{}: corrupt writer record: its part is not JSON", what));
    }
    parts.push_back(catalog::part_from_json(part, what));
  }
  return parts;
}

void DatasetTable::save_part(const std::string& name, const catalog::WriterPart& part) {
  const json md = {{"dataset", name}, {"part", catalog::part_to_json(part).dump()}};
  m_indexes.upsert(m_indexes.home(), parts_ns(),
                   {placeholder_record(util::sha1_hex(name) + "/" + part.writer, m_indexes.home_dimension(), md)});
}

void DatasetTable::drop_parts(const std::string& name) {
  std::vector<std::string> ids;
  for (const json& rec : stored_parts(name)) {
    ids.push_back(rec.value("id", std::string()));
  }
  if (!ids.empty()) {
    m_indexes.remove(m_indexes.home(), parts_ns(), ids);
  }
}

}  // namespace vstash::backends::pinecone
