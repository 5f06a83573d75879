// SPDX-License-Identifier: MIT
// The Pinecone store's datasets and statistics, and its factory (the class and the mapping:
// pineconestore.hpp).
#include "backends/pinecone/pineconebackend.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "backends/pinecone/pineconestore.hpp"
#include "src/errors.hpp"

namespace vstash::backends::pinecone {

std::unique_ptr<Backend> create(const Profile& profile) { return std::make_unique<PineconeBackend>(profile); }

void PineconeBackend::create_dataset(const DatasetSpec& spec) {
  m_indexes.namespace_of(spec.name);
  Connection& c = m_indexes.of(spec);
  const IndexInfo& info = c.index(IndexRequest{spec.dimension(), spec.metric});
  if (info.dimension != spec.dimension() || info.metric != spec.metric) {
    throw ConflictError(fmt::format(
        "{}: index has dimension {} and metric {}; dataset \"{}\" needs dimension {} "
        "and metric {} (use another index, or an index_name template such as "
        "\"vstash-{{dimension}}-{{metric}}\")",
        c.location(), info.dimension, metric_name(info.metric), spec.name, spec.dimension(), metric_name(spec.metric)));
  }
  CatalogEntry fresh;
  fresh.label_field = true;  // rows written from now on carry "_lval" ($label filters)
  m_catalog.create(spec, DatasetTable::record(fresh));
  m_indexes.settle();
}

std::optional<DatasetInfo> PineconeBackend::dataset_info(const std::string& dataset) {
  const auto record = m_catalog.find(dataset);
  if (!record) {
    return std::nullopt;
  }
  DatasetInfo info;
  info.spec = record->spec;
  info.next_index = record->next_index;
  // One describe_index_stats, not a query per 10,000 rows: every command starts here.
  Connection& c = m_indexes.of(record->spec);
  const std::string ns = m_indexes.namespace_of(dataset);
  info.rows = Indexes::namespace_rows(m_indexes.namespace_counts(c), ns);
  info.extra = {{"namespace", ns}, {"index", c.index_name()}};
  return info;
}

std::vector<DatasetInfo> PineconeBackend::list_datasets() {
  std::vector<DatasetInfo> out;
  std::map<std::string, json> counts_by_index;
  for (const catalog::DatasetRecord& record : m_datasets.list()) {
    DatasetInfo info;
    info.spec = record.spec;
    info.next_index = record.next_index;
    const std::string ns = m_indexes.namespace_of(record.spec.name);
    Connection& c = m_indexes.of(record.spec);
    if (!counts_by_index.count(c.index_name())) {
      counts_by_index[c.index_name()] = m_indexes.namespace_counts(c);
    }
    info.rows = Indexes::namespace_rows(counts_by_index[c.index_name()], ns);
    info.extra = {{"namespace", ns}, {"index", c.index_name()}, {"rows_approximate", true}};
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.spec.name < b.spec.name; });
  return out;
}

bool PineconeBackend::drop_dataset(const std::string& dataset) {
  if (!m_datasets.remove(dataset)) {
    return false;
  }
  invalidate(dataset);
  m_indexes.settle();
  return true;
}

Stats PineconeBackend::stats() {
  Stats s;
  s.backend = "pinecone";
  Connection& home = m_indexes.home();
  const IndexInfo& info = home.index();
  s.location = info.host;
  s.datasets = list_datasets();
  for (const auto& c : m_checkpoints.list_checkpoints("")) {
    ++s.checkpoints_per_model[c.model];
  }
  const auto http_stats = home.stats();
  s.extra = {{"index", info.name},
             {"dimension", info.dimension},
             {"metric", wire_metric(info.metric)},
             {"api_version", k_api_version},
             {"namespaces", m_indexes.namespace_counts(home)},
             {"http_requests", http_stats.requests},
             {"http_retries", http_stats.retries}};
  return s;
}

CatalogEntry PineconeBackend::require(const std::string& dataset) {
  return DatasetTable::entry(m_catalog.require(dataset));
}

void PineconeBackend::invalidate(const std::string& dataset) {
  std::lock_guard lock(m_mutex);
  m_positions.erase(dataset);
}

}  // namespace vstash::backends::pinecone
