// SPDX-License-Identifier: MIT
// Helpers of the backend contract suite: which backend to test, scratch datasets that clean
// up after themselves, and deterministic rows.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::contract {

using backends::Backend;
using backends::DatasetSpec;
using backends::Metric;
using backends::QueryHit;
using backends::RowBatch;
using json = nlohmann::json;

// The backend under test: the profile named by $VSTASH_CONTRACT_PROFILE in the file
// $VSTASH_CONTRACT_CONFIG, or, with neither set, a local store in a scratch directory
// shared by every test of this process.
std::unique_ptr<Backend> make_contract_backend();

// A dataset with a unique name (prefix + process + counter), created on construction and
// dropped on destruction, so runs against a persistent server never collide or leak.
class TempDataset {
 public:
  TempDataset(Backend& backend, DatasetSpec spec);
  ~TempDataset();
  TempDataset(const TempDataset&) = delete;
  TempDataset& operator=(const TempDataset&) = delete;

  const std::string& name() const { return m_spec.name; }
  const DatasetSpec& spec() const { return m_spec; }

 private:
  Backend& m_backend;
  DatasetSpec m_spec;
};

// float32 vectors of dim with the metric, no labels.
DatasetSpec vector_spec(int64_t dim, Metric metric = Metric::cosine);
// Deterministic finite values of any dtype; every row has a non-zero element.
Array sample_array(DType dtype, const Shape& shape, uint32_t seed);
// "prefix0", "prefix1", ...
std::vector<std::string> make_ids(const std::string& prefix, int64_t n);
RowBatch make_batch(std::vector<std::string> ids, Array data, std::vector<json> metadata = {},
                    std::optional<Array> labels = std::nullopt, std::vector<int64_t> indices = {});

std::set<std::string> id_set(const std::vector<std::string>& ids);
std::vector<std::string> hit_ids(const std::vector<QueryHit>& hits);
// Every live id of the dataset, read back with read_rows.
std::set<std::string> stored_ids(Backend& backend, const std::string& dataset);
// Metadata as a backend may return it for a row written without any: null or {}.
bool is_empty_metadata(const json& j);

}  // namespace vstash::contract
