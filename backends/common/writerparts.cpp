// SPDX-License-Identifier: MIT
#include "backends/common/writerparts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "backends/common/contention.hpp"
#include "src/io/untrusted.hpp"

namespace vstash::backends::catalog {

namespace {

constexpr const char* k_flag = "writers";

// The keys of `next` whose values differ from `seen`'s (the flag aside).
void changed_keys(const json& seen, const json& next, json& into) {
  if (!next.is_object()) {
    return;
  }
  for (const auto& [k, v] : next.items()) {
    if (k != k_flag && (!seen.is_object() || !seen.contains(k) || seen.at(k) != v)) {
      into[k] = v;
    }
  }
}

}  // namespace

bool has_parts(const DatasetRecord& record) { return record.extra.is_object() && record.extra.value(k_flag, false); }

DatasetRecord fold(DatasetRecord shared, const std::vector<WriterPart>& parts) {
  std::vector<const WriterPart*> order;
  for (const auto& p : parts) {
    order.push_back(&p);
  }
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) { return a->writer < b->writer; });
  if (!shared.spec.metadata.is_object()) {
    shared.spec.metadata = json::object();
  }
  if (!shared.extra.is_object()) {
    shared.extra = json::object();
  }
  for (const WriterPart* p : order) {
    shared.next_index = std::max(shared.next_index, p->next_index);
    shared.spec.metadata.update(p->metadata);
    for (const auto& [k, v] : p->extra.items()) {
      auto it = shared.extra.find(k);
      const bool counters = it != shared.extra.end() && it->is_number_integer() && v.is_number_integer();
      shared.extra[k] = counters ? json(std::max(it->get<int64_t>(), v.get<int64_t>())) : v;
    }
  }
  return shared;
}

WriterPart with_change(WriterPart own, const DatasetRecord& seen, const DatasetRecord& next) {
  own.next_index = std::max(own.next_index, next.next_index);
  changed_keys(seen.spec.metadata, next.spec.metadata, own.metadata);
  changed_keys(seen.extra, next.extra, own.extra);
  return own;
}

json part_to_json(const WriterPart& part) {
  return json{
      {"writer", part.writer}, {"next_index", part.next_index}, {"metadata", part.metadata}, {"extra", part.extra}};
}

WriterPart part_from_json(const json& j, const std::string& what) {
  try {
    WriterPart p;
    p.writer = j.at("writer").get<std::string>();
    p.next_index = j.at("next_index").get<int64_t>();
    p.metadata = j.at("metadata");
    p.extra = j.at("extra");
    if (p.next_index < 0 || !p.metadata.is_object() || !p.extra.is_object()) {
      throw Error(fmt::format("{}: corrupt writer record", what));
    }
    return p;
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: corrupt writer record: {}", what, io::json_error_text(e)));
  }
}

void SplitRecords::set_writer(const std::string& writer) {
  std::lock_guard lock(m_mutex);
  m_writer = writer;
  m_own.clear();
}

std::optional<WriterPart> SplitRecords::own(const std::string& name) {
  std::lock_guard lock(m_mutex);
  auto it = m_own.find(name);
  return it == m_own.end() ? std::nullopt : std::optional(it->second);
}

void SplitRecords::keep_own(const std::string& name, const WriterPart& part) {
  std::lock_guard lock(m_mutex);
  m_own[name] = part;
}

// This writer's own part, as it last wrote it, replaces the stored one (which may lag).
DatasetRecord SplitRecords::view(DatasetRecord shared) {
  const std::string name = shared.spec.name;
  std::vector<WriterPart> parts = has_parts(shared) ? load_parts(name) : std::vector<WriterPart>{};
  std::string writer;
  {
    std::lock_guard lock(m_mutex);
    writer = m_writer;
  }
  auto mine = std::find_if(parts.begin(), parts.end(), [&](const WriterPart& p) { return p.writer == writer; });
  if (auto cached = own(name)) {
    if (mine != parts.end()) {
      *mine = *cached;
    } else {
      parts.push_back(*cached);
    }
  } else if (!writer.empty() && mine != parts.end()) {
    keep_own(name, *mine);
  }
  return parts.empty() ? shared : fold(std::move(shared), parts);
}

std::optional<DatasetRecord> SplitRecords::get(const std::string& name) {
  std::optional<DatasetRecord> shared = shared_get(name);
  return shared ? std::optional(view(std::move(*shared))) : std::nullopt;
}

std::vector<DatasetRecord> SplitRecords::list() {
  std::vector<DatasetRecord> out;
  for (auto& r : shared_list()) {
    out.push_back(view(std::move(r)));
  }
  return out;
}

bool SplitRecords::insert(const DatasetRecord& record) {
  std::unique_lock lock(m_mutex);
  const std::string writer = m_writer;
  lock.unlock();
  if (writer.empty()) {
    return shared_insert(record);
  }
  DatasetRecord flagged = record;
  flagged.extra[k_flag] = true;
  if (!shared_insert(flagged)) {
    return false;
  }
  WriterPart part{writer, record.next_index, record.spec.metadata.is_object() ? record.spec.metadata : json::object(),
                  json::object()};
  save_part(record.spec.name, part);
  keep_own(record.spec.name, part);
  return true;
}

bool SplitRecords::compare_and_set(const DatasetRecord& seen, const DatasetRecord& next) {
  std::unique_lock lock(m_mutex);
  const std::string writer = m_writer;
  lock.unlock();
  if (writer.empty()) {
    return has_parts(seen) ? fold_back(seen, next) : shared_compare_and_set(seen, next);
  }
  const std::string& name = seen.spec.name;
  WriterPart part = with_change(own(name).value_or(WriterPart{writer}), seen, next);
  save_part(name, part);
  keep_own(name, part);
  if (!has_parts(seen)) {
    mark_shared(seen);
  }
  return true;
}

void SplitRecords::mark_shared(DatasetRecord seen) {
  for (int attempt = 0; attempt < k_catalog_attempts; ++attempt) {
    DatasetRecord flagged = seen;
    flagged.extra[k_flag] = true;
    if (shared_compare_and_set(seen, flagged)) {
      return;
    }
    std::optional<DatasetRecord> again = shared_get(seen.spec.name);
    if (!again) {
      throw dataset_not_found(location(), seen.spec.name);
    }
    if (has_parts(*again)) {
      return;
    }
    seen = std::move(*again);
    contention_pause(attempt);
  }
  throw ConflictError(fmt::format("{}: dataset \"{}\": gave up after {} attempts: concurrent writers keep changing it",
                                  location(), seen.spec.name, k_catalog_attempts));
}

// The folded record goes to the shared record first (still flagged), then the parts go, then
// the flag: an interruption at any step leaves a record that reads the same.
bool SplitRecords::fold_back(const DatasetRecord& seen, const DatasetRecord& next) {
  DatasetRecord flagged = next;
  flagged.extra[k_flag] = true;
  if (!shared_compare_and_set(seen, flagged)) {
    return false;
  }
  drop_parts(seen.spec.name);
  {
    std::lock_guard lock(m_mutex);
    m_own.erase(seen.spec.name);
  }
  if (std::optional<DatasetRecord> stored = shared_get(seen.spec.name)) {
    DatasetRecord clean = *stored;
    clean.extra.erase(k_flag);
    shared_compare_and_set(*stored, clean);  // if lost, the flag stays over no parts: the same record
  }
  return true;
}

bool SplitRecords::remove(const std::string& name) {
  std::optional<DatasetRecord> shared = shared_get(name);
  if (shared && has_parts(*shared)) {
    drop_parts(name);
  }
  {
    std::lock_guard lock(m_mutex);
    m_own.erase(name);
  }
  return shared_remove(name);
}

}  // namespace vstash::backends::catalog
