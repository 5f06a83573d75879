// SPDX-License-Identifier: MIT
// Contract: dataset lifecycle, missing datasets and statistics.
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "src/errors.hpp"
#include "tests/contract/contract.hpp"
#include "tests/testutil.hpp"

using namespace vstash;
using namespace vstash::contract;

TEST_SUITE("contract::Datasets") {
  TEST_CASE("creating a dataset twice with the same spec is a no-op that merges metadata") {
    auto b = make_contract_backend();
    auto spec = vector_spec(8, Metric::euclidean);
    spec.metadata = {{"source", "a.npy"}};
    TempDataset ds(*b, spec);
    auto again = ds.spec();
    again.metadata = {{"split", "train"}};
    b->create_dataset(again);
    const auto info = b->dataset_info(ds.name());
    REQUIRE(info);
    CHECK(info->rows == 0);
    CHECK(info->spec.dtype == DType::f32);
    CHECK(info->spec.row_shape == Shape{8});
    CHECK(info->spec.metric == Metric::euclidean);
    CHECK_FALSE(info->spec.label_dtype);
    CHECK(info->spec.metadata.value("source", "") == "a.npy");
    CHECK(info->spec.metadata.value("split", "") == "train");
  }

  TEST_CASE("creating a dataset with a conflicting spec throws ConflictError") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(8));
    auto other_dim = ds.spec();
    other_dim.row_shape = {16};
    CHECK_THROWS_AS(b->create_dataset(other_dim), ConflictError);
    auto other_metric = ds.spec();
    other_metric.metric = Metric::dot;
    CHECK_THROWS_AS(b->create_dataset(other_metric), ConflictError);
    auto other_dtype = ds.spec();
    other_dtype.dtype = DType::f64;
    CHECK_THROWS_AS(b->create_dataset(other_dtype), ConflictError);
    CHECK(b->dataset_info(ds.name())->spec.row_shape == Shape{8});
  }

  TEST_CASE("a spec conflict reads the same on every backend: location, both specs described one way") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(8));
    auto other = ds.spec();
    other.row_shape = {16};
    other.label_dtype = DType::i64;
    const std::string expected = "dataset \"" + ds.name() +
                                 "\" exists as float32 (8,) cosine, no labels; requested float32 (16,) cosine, labels "
                                 "int64 ()";
    try {
      b->create_dataset(other);
      FAIL("no ConflictError");
    } catch (const ConflictError& e) {
      const std::string message = e.what();
      INFO(message);
      const auto at = message.find(": " + expected);
      CHECK(at != std::string::npos);
      CHECK(at > 0);  // the store's location comes first
      CHECK(message.size() == at + 2 + expected.size());
    }
  }

  TEST_CASE("a dataset without labels ignores the label shape of a later create") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(8));
    auto again = ds.spec();
    again.label_shape = {3};
    CHECK_NOTHROW(b->create_dataset(again));
    CHECK_FALSE(b->dataset_info(ds.name())->spec.label_dtype);
  }

  TEST_CASE("a missing dataset reads the same on every backend") {
    auto b = make_contract_backend();
    const std::string name = testutil::unique_name("missing");
    const std::string expected = ": dataset \"" + name + "\" does not exist";
    for (const auto& run :
         std::vector<std::function<void()>>{[&] { b->read_rows(name, 0, 10); }, [&] { b->count(name, nullptr); },
                                            [&] {
                                              b->query(name, {1, 0, 0, 0}, {});
                                            }}) {
      try {
        run();
        FAIL("no NotFoundError");
      } catch (const NotFoundError& e) {
        const std::string message = e.what();
        INFO(message);
        CHECK(message.size() > expected.size());
        CHECK(message.compare(message.size() - expected.size(), expected.size(), expected) == 0);
      }
    }
  }

  TEST_CASE("dataset_info of a missing dataset is empty") {
    auto b = make_contract_backend();
    CHECK_FALSE(b->dataset_info(testutil::unique_name("missing")).has_value());
  }

  TEST_CASE("list_datasets includes a created dataset with its spec") {
    auto b = make_contract_backend();
    DatasetSpec spec;
    spec.dtype = DType::u8;
    spec.row_shape = {3, 4};
    spec.label_dtype = DType::i64;
    TempDataset ds(*b, spec);
    const auto all = b->list_datasets();
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& i) { return i.spec.name == ds.name(); });
    REQUIRE(it != all.end());
    CHECK(it->spec.dtype == DType::u8);
    CHECK(it->spec.row_shape == Shape{3, 4});
    CHECK(it->spec.label_dtype == DType::i64);
    CHECK(it->spec.label_shape.empty());
  }

  TEST_CASE("dropping a dataset removes it and its rows and reports whether it existed") {
    auto b = make_contract_backend();
    auto spec = vector_spec(4);
    spec.name = testutil::unique_name("drop");
    b->create_dataset(spec);
    b->write_rows(spec.name, make_batch(make_ids("d", 3), sample_array(DType::f32, {3, 4}, 1)));
    CHECK(b->drop_dataset(spec.name));
    CHECK_FALSE(b->dataset_info(spec.name).has_value());
    CHECK_FALSE(b->drop_dataset(spec.name));
    b->create_dataset(spec);
    CHECK(b->count(spec.name, nullptr) == 0);
    CHECK(b->drop_dataset(spec.name));
  }

  TEST_CASE("operations on a missing dataset throw NotFoundError") {
    auto b = make_contract_backend();
    const auto name = testutil::unique_name("missing");
    CHECK_THROWS_AS(b->write_rows(name, make_batch({"a"}, sample_array(DType::f32, {1, 4}, 1))), NotFoundError);
    CHECK_THROWS_AS(b->read_rows(name, 0, 10), NotFoundError);
    CHECK_THROWS_AS(b->count(name, nullptr), NotFoundError);
    CHECK_THROWS_AS(b->query(name, {1, 0, 0, 0}, {}), NotFoundError);
    CHECK_FALSE(b->dataset_info(name).has_value());
  }

  TEST_CASE("stats lists the dataset with its row count and dimension") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(8));
    b->write_rows(ds.name(), make_batch(make_ids("s", 5), sample_array(DType::f32, {5, 8}, 2)));
    const auto st = b->stats();
    CHECK(st.backend == b->kind());
    auto it =
        std::find_if(st.datasets.begin(), st.datasets.end(), [&](const auto& i) { return i.spec.name == ds.name(); });
    REQUIRE(it != st.datasets.end());
    CHECK(it->rows == 5);
    CHECK(it->spec.dimension() == 8);
  }
}
