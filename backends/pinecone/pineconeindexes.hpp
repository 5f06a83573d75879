// SPDX-License-Identifier: MIT
// The indexes a Pinecone profile reaches and the record operations every part of the store
// uses on them: upsert, fetch by id, list by prefix, delete by id, namespace counts, and the
// wait for our writes to become visible (profile `wait`).
//
// `index_name` names one index holding every dataset, or is a template
// ("vstash-{dimension}-{metric}") giving each (dimension, metric) its own index, created on
// demand. The catalog, checkpoints and progress live in the "home" index: the template filled
// with the profile's dimension and metric.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/pinecone/pineconeinternal.hpp"
#include "src/profile.hpp"

namespace vstash::backends::pinecone {

class Indexes {
 public:
  explicit Indexes(const Profile& profile);

  // The home index: catalog, checkpoints, progress (and every dataset without a template).
  Connection& home() { return m_home; }
  const Connection& home() const { return m_home; }
  // The index that holds a dataset of this spec (the home index unless index_name is a template).
  Connection& of(const DatasetSpec& spec);
  // The home index's dimension (creating it from the profile's dimension/metric if missing).
  int64_t home_dimension();
  // The home index, created as home_dimension says if missing: checkpoints and progress.
  Connection& home_ready() {
    home_dimension();
    return m_home;
  }

  // namespace_prefix + dataset ("__default__" is ""); UsageError for the reserved "__vstash_" names.
  std::string namespace_of(const std::string& dataset) const;
  std::string catalog_ns() const { return m_prefix + std::string(k_catalog_ns); }
  std::string checkpoint_ns() const { return m_prefix + std::string(k_checkpoint_ns); }
  std::string progress_ns() const { return m_prefix + std::string(k_progress_ns); }

  // Upserts serialized records, batched by count and by exact bytes, requests in parallel.
  void upsert(Connection& c, const std::string& ns, const std::vector<std::string>& records);
  // Records by stored id (missing ones left out): requests cut by URL length, id count and a
  // reply of at most k_response_budget for records of about row_bytes each.
  std::map<std::string, json> fetch(Connection& c, const std::string& ns, const std::vector<std::string>& ids,
                                    int64_t row_bytes);
  // Every record of a namespace whose id starts with prefix (list + fetch).
  std::vector<json> fetch_all(Connection& c, const std::string& ns, const std::string& prefix, int64_t row_bytes);
  // Deletes records by stored id, k_max_ids_per_request per request.
  void remove(Connection& c, const std::string& ns, const std::vector<std::string>& ids);
  // describe_index_stats's "namespaces" object.
  json namespace_counts(Connection& c);
  // A namespace's vectorCount in namespace_counts ("" is listed as "__default__" or "").
  static int64_t namespace_rows(const json& counts, const std::string& ns);

  // With profile `wait`, polls describe_index_stats of every index we wrote to until it reports
  // our last write's LSN as indexed (x-pinecone-request-lsn vs x-pinecone-max-indexed-lsn).
  void settle();

 private:
  void settle(Connection& c);

  Profile m_profile;
  std::string m_index_template;
  Connection m_home;
  std::string m_prefix;
  bool m_wait = true;
  int64_t m_profile_dimension = 0;
  Metric m_profile_metric = Metric::cosine;
  std::mutex m_mutex;
  std::map<std::string, std::unique_ptr<Connection>> m_others;  // other indexes of an index_name template
  std::map<const Connection*, int64_t> m_confirmed_lsn;         // highest LSN seen indexed, per index
};

}  // namespace vstash::backends::pinecone
