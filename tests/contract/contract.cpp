// SPDX-License-Identifier: MIT
// The backend under test and the suite's helpers.
#include "tests/contract/contract.hpp"

#include <cstdlib>
#include <cstring>
#include <random>

#include "backends/registry.hpp"
#include "src/profile.hpp"
#include "tests/testutil.hpp"

namespace vstash::contract {

std::unique_ptr<Backend> make_contract_backend() {
  const char* config = std::getenv("VSTASH_CONTRACT_CONFIG");
  const char* profile = std::getenv("VSTASH_CONTRACT_PROFILE");
  if ((config && *config) || (profile && *profile)) {
    const auto file = config && *config ? load_profile_file(config) : find_profile_file("");
    return backends::create_backend(select_profile(file, profile ? profile : ""), &file);  // `cache:` needs the file
  }
  static const std::string path = (testutil::scratch_dir("contract") / "store.db").string();
  return backends::create_backend(Profile("contract", "local", json{{"path", path}}, "<contract>"));
}

TempDataset::TempDataset(Backend& backend, DatasetSpec spec) : m_backend(backend), m_spec(std::move(spec)) {
  m_spec.name = testutil::unique_name(m_spec.name.empty() ? "ct" : m_spec.name);
  m_backend.create_dataset(m_spec);
}

TempDataset::~TempDataset() {
  try {
    m_backend.drop_dataset(m_spec.name);
  } catch (const std::exception& e) {
    MESSAGE("could not drop dataset " << m_spec.name << ": " << e.what());
  }
}

DatasetSpec vector_spec(int64_t dim, Metric metric) {
  DatasetSpec s;
  s.dtype = DType::f32;
  s.row_shape = {dim};
  s.metric = metric;
  return s;
}

Array sample_array(DType dtype, const Shape& shape, uint32_t seed) {
  Array a(dtype, shape);
  std::mt19937 rng(seed);
  const int64_t n = a.size();
  const int64_t per_row = std::max<int64_t>(1, shape_product(a.row_shape()));
  for (int64_t i = 0; i < n; ++i) {
    const bool first = i % per_row == 0;  // forced non-zero so no row is all zeros
    std::byte* p = a.data() + static_cast<size_t>(i) * dtype_size(dtype);
    auto put = [p]<class T>(T v) { std::memcpy(p, &v, sizeof(T)); };
    const auto r = static_cast<int64_t>(rng() % 2001) - 1000;
    const int64_t nz = r == 0 && first ? 7 : r;
    switch (dtype) {
      case DType::f16:
        put(float_to_half(static_cast<float>(nz) / 256.0f));
        break;  // exact in half
      case DType::f32:
        put(static_cast<float>(nz) / 1000.0f + 0.0001f);
        break;
      case DType::f64:
        put(static_cast<double>(nz) / 997.0 + 1e-9);
        break;
      case DType::i8:
        put(static_cast<int8_t>(nz % 100));
        break;
      case DType::i16:
        put(static_cast<int16_t>(nz));
        break;
      case DType::i32:
        put(static_cast<int32_t>(nz * 1000));
        break;
      case DType::i64:
        put(static_cast<int64_t>(nz) * (int64_t{1} << 40));
        break;
      case DType::u8:
        put(static_cast<uint8_t>(first ? 1 + rng() % 255 : rng() % 256));
        break;
      case DType::u16:
        put(static_cast<uint16_t>(rng() % 65536));
        break;
      case DType::u32:
        put(static_cast<uint32_t>(rng()));
        break;
      case DType::u64:
        put(static_cast<uint64_t>(rng()) << 20);
        break;
      case DType::b1:
        put(static_cast<uint8_t>(first ? 1 : rng() % 2));
        break;
    }
  }
  return a;
}

std::vector<std::string> make_ids(const std::string& prefix, int64_t n) {
  std::vector<std::string> ids;
  for (int64_t i = 0; i < n; ++i) {
    ids.push_back(prefix + std::to_string(i));
  }
  return ids;
}

RowBatch make_batch(std::vector<std::string> ids, Array data, std::vector<json> metadata, std::optional<Array> labels,
                    std::vector<int64_t> indices) {
  RowBatch b;
  b.ids = std::move(ids);
  b.data = std::move(data);
  b.metadata = std::move(metadata);
  b.labels = std::move(labels);
  b.indices = std::move(indices);
  return b;
}

std::set<std::string> id_set(const std::vector<std::string>& ids) { return {ids.begin(), ids.end()}; }

std::vector<std::string> hit_ids(const std::vector<QueryHit>& hits) {
  std::vector<std::string> out;
  for (const auto& h : hits) {
    out.push_back(h.id);
  }
  return out;
}

std::set<std::string> stored_ids(Backend& backend, const std::string& dataset) {
  return id_set(backend.read_rows(dataset, 0, 1'000'000).ids);
}

bool is_empty_metadata(const json& j) { return j.is_null() || (j.is_object() && j.empty()); }

}  // namespace vstash::contract
