// SPDX-License-Identifier: MIT
// Contract: the rows and order of an epoch (batch --filter, --split, --order global) are the
// same on every backend: selections follow the filter language and the split hash, orders
// follow sharding.hpp's recipe, whatever the store.
#include <algorithm>
#include <map>

#include "tests/contract/contract.hpp"
#include "workflows/training/dataloader.hpp"
#include "workflows/training/selection.hpp"

using namespace vstash;
using namespace vstash::contract;
using namespace vstash::training;

namespace {

constexpr int64_t k_rows = 60;

// Rows r0.. with metadata {"g": i % 3} and int64 labels i % 5.
RowBatch labelled_rows(int64_t first, int64_t n) {
  std::vector<json> metadata;
  Array labels(DType::i64, {n});
  for (int64_t i = 0; i < n; ++i) {
    metadata.push_back({{"g", (first + i) % 3}});
    labels.as<int64_t>()[i] = (first + i) % 5;
  }
  auto ids = make_ids("r", first + n);
  ids.erase(ids.begin(), ids.begin() + first);
  return make_batch(std::move(ids), sample_array(DType::f32, {n, 4}, 7 + static_cast<uint32_t>(first)),
                    std::move(metadata), std::move(labels));
}

DatasetSpec labelled_spec() {
  DatasetSpec spec = vector_spec(4);
  spec.label_dtype = DType::i64;
  spec.label_shape = {};
  return spec;
}

// Every batch's ids, through the data loader (as batch --stream reads them).
std::vector<std::vector<std::string>> epoch_ids(Backend& b, const std::string& dataset, LoaderOptions options) {
  auto loader = create_data_loader(b, dataset, options);
  std::vector<std::vector<std::string>> out;
  while (auto batch = loader->next()) {
    out.push_back(batch->ids);
  }
  return out;
}

std::vector<std::string> flat(const std::vector<std::vector<std::string>>& batches) {
  std::vector<std::string> out;
  for (const auto& b : batches) {
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

}  // namespace

TEST_SUITE("contract::EpochOrder") {
  TEST_CASE("a filtered epoch is the recipe's order over the matching rows, in index order") {
    auto b = make_contract_backend();
    TempDataset ds(*b, labelled_spec());
    b->write_rows(ds.name(), labelled_rows(0, k_rows));
    const auto info = b->dataset_info(ds.name());
    REQUIRE(info);
    for (const char* text : {R"({"g": 1})", R"({"$label": {"$in": [1, 2]}})", R"({"g": {"$ne": 0}, "$label": 4})"}) {
      CAPTURE(text);
      const Filter filter = Filter::parse(text);
      const auto selection = select_positions(*b, ds.name(), *info, &filter, nullptr, 5);
      REQUIRE(selection);
      std::vector<int64_t> expected_selection;
      for (int64_t i = 0; i < k_rows; ++i) {
        if (filter.matches(json{{"g", i % 3}}, json(i % 5))) {
          expected_selection.push_back(i);
        }
      }
      CHECK(*selection == expected_selection);
      std::vector<std::string> expected;
      for (const auto p : epoch_order(static_cast<int64_t>(expected_selection.size()), true, 5, 1)) {
        expected.push_back("r" + std::to_string(expected_selection[static_cast<size_t>(p)]));
      }
      LoaderOptions options;
      options.batch_size = 7;
      options.shuffle = true;
      options.seed = 5;
      options.epoch = 1;
      options.num_workers = 2;
      options.selection = std::make_shared<const std::vector<int64_t>>(*selection);
      CHECK(flat(epoch_ids(*b, ds.name(), options)) == expected);
    }
  }

  TEST_CASE("split parts are disjoint, cover the dataset and keep their rows when rows are appended") {
    auto b = make_contract_backend();
    TempDataset ds(*b, labelled_spec());
    b->write_rows(ds.name(), labelled_rows(0, k_rows));
    auto parts_of = [&] {
      const auto info = b->dataset_info(ds.name());
      REQUIRE(info);
      std::map<std::string, std::string> part;  // id -> part name
      for (const char* take : {"train", "val", "test"}) {
        const auto split = parse_split("train=0.6,val=0.2,test=0.2", take);
        const auto selection = select_positions(*b, ds.name(), *info, nullptr, &split, 3);
        REQUIRE(selection);
        const auto rows = b->read_positions(ds.name(), *selection);
        for (size_t i = 0; i < rows.size(); ++i) {
          CHECK_MESSAGE(part.emplace(rows.ids[i], take).second, rows.ids[i] << " is in two parts");
          CHECK(split_of(split, rows.ids[i], 3) == split.take);
        }
      }
      CHECK(static_cast<int64_t>(part.size()) == info->rows);
      return part;
    };
    const auto before = parts_of();
    CHECK(std::count_if(before.begin(), before.end(), [](const auto& kv) { return kv.second == "train"; }) > 20);
    b->write_rows(ds.name(), labelled_rows(k_rows, 25));
    const auto after = parts_of();
    CHECK(after.size() == before.size() + 25);
    for (const auto& [id, part] : before) {
      CHECK_MESSAGE(after.at(id) == part, id << " moved from " << part);
    }
  }

  TEST_CASE("global batches are the same for any world size and a 4-rank run resumes at 2 ranks") {
    auto b = make_contract_backend();
    TempDataset ds(*b, labelled_spec());
    b->write_rows(ds.name(), labelled_rows(0, k_rows));
    auto options = [](int64_t rank, int64_t world, int workers, int64_t start) {
      LoaderOptions o;
      o.order = OrderKind::global;
      o.batch_size = 8;  // the global batch: 60 rows = 7 full batches and one of 4
      o.shuffle = true;
      o.seed = 11;
      o.epoch = 2;
      o.rank = rank;
      o.world_size = world;
      o.num_workers = workers;
      o.start_position = start;
      return o;
    };
    const auto single = epoch_ids(*b, ds.name(), options(0, 1, 0, 0));
    REQUIRE(single.size() == 8);
    for (int64_t w : {1, 2, 4}) {
      std::vector<std::vector<std::vector<std::string>>> ranks;
      for (int64_t r = 0; r < w; ++r) {
        ranks.push_back(epoch_ids(*b, ds.name(), options(r, w, r % 2 == 0 ? 0 : 2, 0)));
      }
      for (size_t k = 0; k < single.size(); ++k) {
        std::vector<std::string> joined;
        for (const auto& rank : ranks) {
          if (k < rank.size()) {
            joined.insert(joined.end(), rank[k].begin(), rank[k].end());
          }
        }
        CAPTURE(w);
        CAPTURE(k);
        CHECK(joined == single[k]);
      }
    }
    // 4 ranks read global batches 0..2, then the job restarts on 2 ranks at global batch 3.
    std::vector<std::string> read;
    for (int64_t r = 0; r < 4; ++r) {
      const auto batches = epoch_ids(*b, ds.name(), options(r, 4, 0, 0));
      for (size_t k = 0; k < 3; ++k) {
        read.insert(read.end(), batches[k].begin(), batches[k].end());
      }
    }
    for (int64_t r = 0; r < 2; ++r) {
      const auto rest = flat(epoch_ids(*b, ds.name(), options(r, 2, 2, 3)));
      read.insert(read.end(), rest.begin(), rest.end());
    }
    CHECK(read.size() == static_cast<size_t>(k_rows));
    CHECK(id_set(read) == id_set(make_ids("r", k_rows)));
  }
}
