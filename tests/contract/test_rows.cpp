// SPDX-License-Identifier: MIT
// Contract: writing and reading rows exactly, in index order, by position and by id.
#include "src/errors.hpp"
#include "tests/contract/contract.hpp"

using namespace vstash;
using namespace vstash::contract;

namespace {

struct DTypeCase {
  DType dtype;
  Shape row_shape;
  std::optional<DType> label_dtype;
  Shape label_shape;
};

const std::vector<json> k_metadata = {
    nullptr,
    {{"a", 1}},
    {{"nested", {{"x", {1, 2, {{"y", "z"}}}}}}, {"f", 1.5}, {"b", true}},
    {{"name", "Zürich 日本 🚀"}, {"ключ", "значение"}},
    {{"neg", -3}, {"big", 1234567890123}, {"list", {"p", "q"}}},
};

void check_metadata(const json& got, const json& want) {
  if (want.is_null()) {
    CHECK_MESSAGE(is_empty_metadata(got), got.dump());
  } else {
    CHECK_MESSAGE(got == want, got.dump() << " != " << want.dump());
  }
}

}  // namespace

TEST_SUITE("contract::Rows") {
  TEST_CASE("rows round-trip exactly for every dtype, row shape, label and metadata") {
    const std::vector<DTypeCase> cases = {
        {DType::f32, {8}, DType::i64, {}}, {DType::f32, {3, 4}, DType::f32, {2}}, {DType::f64, {3, 4}, {}, {}},
        {DType::f16, {8}, DType::i64, {}}, {DType::i64, {8}, DType::f32, {2}},    {DType::u8, {3, 4}, DType::i64, {}},
        {DType::b1, {8}, {}, {}},
    };
    auto b = make_contract_backend();
    uint32_t seed = 10;
    for (const auto& c : cases) {
      CAPTURE(dtype_name(c.dtype));
      CAPTURE(shape_to_string(c.row_shape));
      DatasetSpec spec;
      spec.dtype = c.dtype;
      spec.row_shape = c.row_shape;
      spec.label_dtype = c.label_dtype;
      spec.label_shape = c.label_shape;
      TempDataset ds(*b, spec);
      const int64_t n = static_cast<int64_t>(k_metadata.size());
      Shape shape = c.row_shape;
      shape.insert(shape.begin(), n);
      const Array data = sample_array(c.dtype, shape, seed++);
      std::optional<Array> labels;
      if (c.label_dtype) {
        Shape ls = c.label_shape;
        ls.insert(ls.begin(), n);
        labels = sample_array(*c.label_dtype, ls, seed++);
      }
      const auto ids = make_ids("row-", n);
      b->write_rows(ds.name(), make_batch(ids, data, k_metadata, labels));

      const auto got = b->read_rows(ds.name(), 0, 100);
      CHECK(got.ids == ids);
      CHECK(got.indices == std::vector<int64_t>{0, 1, 2, 3, 4});
      CHECK(got.data == data);
      CHECK(got.labels.has_value() == labels.has_value());
      if (labels && got.labels) {
        CHECK(*got.labels == *labels);
      }
      REQUIRE(got.metadata.size() == k_metadata.size());
      for (size_t i = 0; i < k_metadata.size(); ++i) {
        check_metadata(got.metadata[i], k_metadata[i]);
      }
    }
  }

  TEST_CASE("read_rows returns what is left past the end and nothing beyond it") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    const Array data = sample_array(DType::f32, {10, 4}, 3);
    b->write_rows(ds.name(), make_batch(make_ids("r", 10), data));
    const auto tail = b->read_rows(ds.name(), 8, 5);
    CHECK(tail.ids == std::vector<std::string>{"r8", "r9"});
    CHECK(tail.data == data.slice_rows(8, 2));
    const auto middle = b->read_rows(ds.name(), 3, 4);
    CHECK(middle.indices == std::vector<int64_t>{3, 4, 5, 6});
    CHECK(middle.data == data.slice_rows(3, 4));
    const auto empty = b->read_rows(ds.name(), 10, 5);
    CHECK(empty.size() == 0);
    CHECK(empty.data.shape() == Shape{0, 4});
    CHECK(b->read_rows(ds.name(), 100, 5).size() == 0);
  }

  TEST_CASE("read_positions returns rows in the order given, and skips deleted rows") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    const Array data = sample_array(DType::f32, {10, 4}, 4);
    b->write_rows(ds.name(), make_batch(make_ids("r", 10), data));
    const auto shuffled = b->read_positions(ds.name(), {3, 0, 7});
    CHECK(shuffled.ids == std::vector<std::string>{"r3", "r0", "r7"});
    CHECK(shuffled.data.slice_rows(0, 1) == data.slice_rows(3, 1));
    CHECK(shuffled.data.slice_rows(2, 1) == data.slice_rows(7, 1));

    CHECK(b->delete_ids(ds.name(), {"r1", "r4"}) == 2);
    // Live indices are now 0 2 3 5 6 7 8 9: position p is the p-th of them.
    const auto gapped = b->read_positions(ds.name(), {3, 1, 0, 7});
    CHECK(gapped.ids == std::vector<std::string>{"r5", "r2", "r0", "r9"});
    CHECK(gapped.indices == std::vector<int64_t>{5, 2, 0, 9});
    const auto all = b->read_rows(ds.name(), 0, 100);
    CHECK(all.indices == std::vector<int64_t>{0, 2, 3, 5, 6, 7, 8, 9});
    const auto window = b->read_rows(ds.name(), 2, 3);
    CHECK(window.ids == std::vector<std::string>{"r3", "r5", "r6"});
  }

  TEST_CASE("indices are assigned from next_index unless the batch gives them") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    b->write_rows(ds.name(), make_batch({"a", "b", "c"}, sample_array(DType::f32, {3, 4}, 5)));
    b->write_rows(ds.name(), make_batch({"d", "e"}, sample_array(DType::f32, {2, 4}, 6)));
    CHECK(b->read_rows(ds.name(), 0, 10).indices == std::vector<int64_t>{0, 1, 2, 3, 4});
    CHECK(b->dataset_info(ds.name())->next_index == 5);

    b->write_rows(ds.name(), make_batch({"x", "y"}, sample_array(DType::f32, {2, 4}, 7), {}, {}, {20, 10}));
    CHECK(b->dataset_info(ds.name())->next_index == 21);
    b->write_rows(ds.name(), make_batch({"z"}, sample_array(DType::f32, {1, 4}, 8)));
    const auto all = b->read_rows(ds.name(), 0, 10);
    CHECK(all.ids == std::vector<std::string>{"a", "b", "c", "d", "e", "y", "x", "z"});
    CHECK(all.indices == std::vector<int64_t>{0, 1, 2, 3, 4, 10, 20, 21});
    CHECK(b->dataset_info(ds.name())->rows == 8);
  }

  TEST_CASE("explicit indices far apart leave gaps that read as nothing, in any write order") {
    // Blocks of one ingest may commit out of order (several writers), so a later block can
    // land before the rows below it exist; stores that group rows into chunks must cope.
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    const Array data = sample_array(DType::f32, {3, 4}, 12);
    b->write_rows(ds.name(), make_batch({"far"}, data.slice_rows(0, 1), {}, {}, {5000}));
    CHECK(b->dataset_info(ds.name())->rows == 1);
    CHECK(b->read_rows(ds.name(), 0, 10).ids == std::vector<std::string>{"far"});
    b->write_rows(ds.name(), make_batch({"mid", "low"}, data.slice_rows(1, 2), {}, {}, {1000, 0}));
    const auto all = b->read_rows(ds.name(), 0, 10);
    CHECK(all.ids == std::vector<std::string>{"low", "mid", "far"});
    CHECK(all.indices == std::vector<int64_t>{0, 1000, 5000});
    CHECK(all.data.row(2)[0] == data.row(0)[0]);
    CHECK(b->read_positions(ds.name(), {2, 0}).ids == std::vector<std::string>{"far", "low"});
    CHECK(b->dataset_info(ds.name())->next_index == 5001);
    CHECK(b->count(ds.name(), nullptr) == 3);
  }

  TEST_CASE("fetch returns rows in the order asked and leaves out missing ids") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    const Array data = sample_array(DType::f32, {4, 4}, 9);
    b->write_rows(ds.name(), make_batch(make_ids("f", 4), data, {{{"k", 0}}, {{"k", 1}}, {{"k", 2}}, {{"k", 3}}}));
    const auto got = b->fetch(ds.name(), {"f3", "nope", "f0", "f2"});
    CHECK(got.ids == std::vector<std::string>{"f3", "f0", "f2"});
    CHECK(got.indices == std::vector<int64_t>{3, 0, 2});
    REQUIRE(got.size() == 3);
    CHECK(got.data.slice_rows(0, 1) == data.slice_rows(3, 1));
    CHECK(got.metadata[1] == json{{"k", 0}});
    CHECK(b->fetch(ds.name(), {"nope"}).size() == 0);
  }

  TEST_CASE("upsert by id replaces the whole row, keeps its index and the row count") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    b->write_rows(ds.name(), make_batch(make_ids("u", 5), sample_array(DType::f32, {5, 4}, 10),
                                        {{{"old", 1}}, {{"old", 1}}, {{"old", 1}, {"keep", "no"}}, nullptr, nullptr}));
    const Array fresh = sample_array(DType::f32, {1, 4}, 11);
    b->write_rows(ds.name(), make_batch({"u2"}, fresh, {{{"new", 2}}}));
    CHECK(b->count(ds.name(), nullptr) == 5);
    const auto got = b->fetch(ds.name(), {"u2"});
    REQUIRE(got.size() == 1);
    CHECK(got.data == fresh);
    CHECK(got.metadata[0] == json{{"new", 2}});
    CHECK(got.indices[0] == 2);
    CHECK(b->read_rows(ds.name(), 0, 10).ids == make_ids("u", 5));
  }

  TEST_CASE("update_row replaces the vector, merges metadata and deletes keys set to null") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    b->write_rows(ds.name(), make_batch({"a", "b"}, sample_array(DType::f32, {2, 4}, 12),
                                        {{{"x", 1}, {"y", "keep"}}, {{"z", 0}}}));
    const Array v = sample_array(DType::f32, {4}, 13);
    b->update_row(ds.name(), "a", v, std::nullopt);
    auto got = b->fetch(ds.name(), {"a"});
    REQUIRE(got.size() == 1);
    CHECK(std::equal(got.data.bytes().begin(), got.data.bytes().end(), v.bytes().begin(), v.bytes().end()));
    CHECK(got.metadata[0] == json{{"x", 1}, {"y", "keep"}});

    b->update_row(ds.name(), "a", std::nullopt, json{{"x", 2}, {"w", {{"deep", true}}}});
    got = b->fetch(ds.name(), {"a"});
    CHECK(got.metadata[0] == json{{"x", 2}, {"y", "keep"}, {"w", {{"deep", true}}}});
    CHECK(std::equal(got.data.bytes().begin(), got.data.bytes().end(), v.bytes().begin(), v.bytes().end()));

    b->update_row(ds.name(), "a", std::nullopt, json{{"y", nullptr}});
    CHECK(b->fetch(ds.name(), {"a"}).metadata[0] == json{{"x", 2}, {"w", {{"deep", true}}}});
    CHECK(b->fetch(ds.name(), {"b"}).metadata[0] == json{{"z", 0}});
    CHECK_THROWS_AS(b->update_row(ds.name(), "missing", v, std::nullopt), NotFoundError);
    CHECK(b->count(ds.name(), nullptr) == 2);
  }

  TEST_CASE("delete_ids returns how many of the ids existed") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    b->write_rows(ds.name(), make_batch(make_ids("d", 5), sample_array(DType::f32, {5, 4}, 14)));
    CHECK(b->delete_ids(ds.name(), {"d1", "nope", "d3"}) == 2);
    CHECK(b->delete_ids(ds.name(), {"d1"}) == 0);
    CHECK(b->count(ds.name(), nullptr) == 3);
    CHECK(stored_ids(*b, ds.name()) == std::set<std::string>{"d0", "d2", "d4"});
  }

  TEST_CASE("count and delete_where honour the filter") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    b->write_rows(
        ds.name(),
        make_batch(
            make_ids("c", 6), sample_array(DType::f32, {6, 4}, 15),
            {{{"even", true}}, {{"even", false}}, {{"even", true}}, {{"even", false}}, {{"even", true}}, nullptr}));
    const auto even = Filter::parse(R"({"even": true})");
    const auto empty = Filter::parse("{}");
    CHECK(b->count(ds.name(), nullptr) == 6);
    CHECK(b->count(ds.name(), &empty) == 6);
    CHECK(b->count(ds.name(), &even) == 3);
    CHECK(b->delete_where(ds.name(), even) == 3);
    CHECK(b->count(ds.name(), nullptr) == 3);
    CHECK(stored_ids(*b, ds.name()) == std::set<std::string>{"c1", "c3", "c5"});
  }

  TEST_CASE("NaN or Inf in a batch is refused with UsageError and nothing is written") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      Array data = sample_array(DType::f32, {3, 4}, 16);
      data.as<float>()[6] = bad;
      CHECK_THROWS_AS(b->write_rows(ds.name(), make_batch({"n0", "n1", "n2"}, data)), UsageError);
      CHECK(b->count(ds.name(), nullptr) == 0);
      CHECK(b->fetch(ds.name(), {"n0", "n1", "n2"}).size() == 0);
    }
  }

  TEST_CASE("a batch of the wrong dtype or shape is refused with UsageError") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    CHECK_THROWS_AS(b->write_rows(ds.name(), make_batch({"a"}, sample_array(DType::f32, {1, 5}, 1))), UsageError);
    CHECK_THROWS_AS(b->write_rows(ds.name(), make_batch({"a"}, sample_array(DType::f64, {1, 4}, 1))), UsageError);
    CHECK(b->count(ds.name(), nullptr) == 0);
  }

  TEST_CASE("hostile ids and metadata are stored and returned verbatim") {
    const std::vector<std::string> ids = {
        "it's",
        "say \"hi\"",
        "a;b",
        "$$x$$",
        "with space",
        "line\nbreak",
        "*",
        "back\\slash",
        "ünïcødé 日本",
        std::string(300, 'x'),
        "'; DROP TABLE rows; --",
        "%_?",
    };
    std::vector<json> metadata;
    for (size_t i = 0; i < ids.size(); ++i) {
      metadata.push_back({{"it's", "v'1"},
                          {"q\"k", "a\"b"},
                          {"semi;colon", ";"},
                          {"a$b", "$$"},
                          {"sp ace", "new\nline"},
                          {"*", "*"},
                          {"back\\", "\\"},
                          {"ключ", "значение"},
                          {"i", static_cast<int64_t>(i)}});
    }
    metadata[3]["it's"] = "other'value";
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(4));
    const auto n = static_cast<int64_t>(ids.size());
    b->write_rows(ds.name(), make_batch(ids, sample_array(DType::f32, {n, 4}, 17), metadata));
    CHECK(b->read_rows(ds.name(), 0, 100).ids == ids);
    const auto got = b->fetch(ds.name(), ids);
    CHECK(got.ids == ids);
    for (size_t i = 0; i < ids.size() && i < got.size(); ++i) {
      CHECK(got.metadata[i] == metadata[i]);
    }
    const auto hits = b->query(ds.name(), {1, 1, 1, 1}, {.top_k = 100});
    CHECK(id_set(hit_ids(hits)) == id_set(ids));
    const auto f = Filter::from_json({{"it's", "other'value"}});
    CHECK(b->count(ds.name(), &f) == 1);
    CHECK(hit_ids(b->query(ds.name(), {1, 1, 1, 1}, {.top_k = 100, .filter = &f})) == std::vector<std::string>{ids[3]});
    const auto g = Filter::from_json({{"sp ace", "new\nline"}, {"back\\", "\\"}});
    CHECK(b->count(ds.name(), &g) == n);
    CHECK(b->delete_ids(ds.name(), {ids[0], ids[9], ids[10]}) == 3);
    CHECK(b->count(ds.name(), nullptr) == n - 3);
  }

  TEST_CASE("a batch of 3000 rows is written in one call and read back in order") {
    auto b = make_contract_backend();
    TempDataset ds(*b, vector_spec(16, Metric::dot));
    const int64_t n = 3000;
    const Array data = sample_array(DType::f32, {n, 16}, 18);
    std::vector<json> md;
    for (int64_t i = 0; i < n; ++i) {
      md.push_back({{"i", i}, {"even", i % 2 == 0}});
    }
    const auto ids = make_ids("big-", n);
    b->write_rows(ds.name(), make_batch(ids, data, md));
    CHECK(b->count(ds.name(), nullptr) == n);
    const auto all = b->read_rows(ds.name(), 0, n);
    CHECK(all.ids == ids);
    CHECK(all.data == data);
    const auto tail = b->read_rows(ds.name(), 2900, 200);
    CHECK(tail.size() == 100);
    CHECK(tail.data == data.slice_rows(2900, 100));
    const auto picked = b->read_positions(ds.name(), {2999, 0, 1500});
    CHECK(picked.ids == std::vector<std::string>{"big-2999", "big-0", "big-1500"});
    const auto even = Filter::parse(R"({"even": true})");
    CHECK(b->count(ds.name(), &even) == n / 2);
    CHECK(b->delete_where(ds.name(), even) == n / 2);
    CHECK(b->count(ds.name(), nullptr) == n / 2);
    CHECK(b->read_positions(ds.name(), {0, 1}).ids == std::vector<std::string>{"big-1", "big-3"});
  }
}
