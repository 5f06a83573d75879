// SPDX-License-Identifier: MIT
// The copy and compare algorithms (workflows/transfer/copy.hpp, compare.hpp, checkpoints.hpp) between
// two local stores in a scratch directory: what is copied, what is refused, resuming after a
// failed block, and what a comparison finds.
#include <doctest/doctest.h>

#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "tests/forwardingbackend.hpp"
#include "tests/testutil.hpp"
#include "workflows/transfer/checkpoints.hpp"
#include "workflows/transfer/compare.hpp"
#include "workflows/transfer/copy.hpp"

using namespace vstash;
using backends::Backend;
using backends::RowBatch;
using nlohmann::json;

namespace {

constexpr int64_t k_rows = 57;

// Fails write_rows once when a block starting at index `fail_at` comes (a crash mid-copy).
class FailingWriter final : public testutil::ForwardingBackend {
 public:
  FailingWriter(Backend& inner, int64_t fail_at) : ForwardingBackend(inner), m_fail_at(fail_at) {}
  void write_rows(const std::string& d, const RowBatch& b) override {
    if (!b.indices.empty() && b.indices.front() == m_fail_at) {
      throw Error("injected failure");
    }
    m_inner.write_rows(d, b);
    m_written += static_cast<int64_t>(b.size());
  }
  int64_t written() const { return m_written; }

 private:
  int64_t m_fail_at;
  int64_t m_written = 0;
};

struct Fixture {
  std::filesystem::path dir = testutil::scratch_dir("transfer");
  Profile a{"a", "local", {{"path", (dir / "a.db").string()}}, "test"};
  Profile b{"b", "local", {{"path", (dir / "b.db").string()}}, "test"};
  std::unique_ptr<Backend> src = backends::create_backend(a);
  std::unique_ptr<Backend> dst = backends::create_backend(b);

  Fixture() {
    backends::DatasetSpec spec;
    spec.name = "s";
    spec.dtype = DType::f16;
    spec.row_shape = {2, 3};
    spec.label_dtype = DType::i64;
    spec.metadata = {{"origin", "test"}, {"ingest_watermark", k_rows}};
    src->create_dataset(spec);
    RowBatch rows;
    rows.data = Array(DType::f16, {k_rows, 2, 3});
    for (int64_t i = 0; i < rows.data.size(); ++i) {  // finite halves of all sorts, signs too
      rows.data.as<uint16_t>()[i] = static_cast<uint16_t>((i * 7919 % 0x7bff) | (i % 3 == 0 ? 0x8000 : 0));
    }
    rows.labels = Array(DType::i64, {k_rows});
    for (int64_t r = 0; r < k_rows; ++r) {
      rows.ids.push_back("ü" + std::to_string(r));
      rows.indices.push_back(3 * r + 1);  // gaps, as after deletes
      rows.labels->as<int64_t>()[r] = r - 1000;
      rows.metadata.push_back(r % 4 == 0 ? json(nullptr) : json{{"r", r}, {"nested", {{"x", {1, "y"}}}}});
    }
    src->write_rows("s", rows);
  }

  transfer::CopyRequest request(int64_t block = 10) const {
    transfer::CopyRequest r;
    r.src_dataset = "s";
    r.dst_dataset = "d";
    r.src_address = "a:s";
    r.dst_kind = "local";
    r.block_rows = block;
    return r;
  }
  transfer::CopyPlan plan(const transfer::CopyRequest& r) {
    return transfer::plan_copy(*src->dataset_info("s"), dst->dataset_info(r.dst_dataset), r);
  }
  transfer::CopyStats copy(const transfer::CopyRequest& r, const std::vector<Backend*>& writers) {
    return transfer::run_copy(*src, *dst, writers, plan(r), r, [](int64_t) {});
  }
  transfer::CompareResult compare(const transfer::CompareOptions& o = {}) {
    return transfer::compare_datasets(*src, "s", *dst, "d", o, [](int64_t) {});
  }
};

}  // namespace

TEST_SUITE("transfer::copy") {
  TEST_CASE("a copy with two writers keeps ids, indices, bytes, labels and metadata, and compares equal") {
    Fixture fx;
    auto w1 = backends::create_backend(fx.b);
    auto w2 = backends::create_backend(fx.b);
    const auto stats = fx.copy(fx.request(), {w1.get(), w2.get()});
    CHECK(stats.rows == k_rows);
    const RowBatch s = fx.src->read_rows("s", 0, k_rows);
    const RowBatch d = fx.dst->read_rows("d", 0, k_rows);
    CHECK(d.ids == s.ids);
    CHECK(d.indices == s.indices);
    CHECK(d.data == s.data);
    CHECK(*d.labels == *s.labels);
    const auto info = fx.dst->dataset_info("d");
    CHECK(info->spec.metadata["origin"] == "test");
    CHECK(info->spec.metadata["copy_source"] == "a:s");
    CHECK(info->spec.metadata["ingest_watermark"] == k_rows);
    const auto r = fx.compare();
    CHECK(r.equal());
    CHECK(r.src_digest == r.dst_digest);
    CHECK(r.compared == k_rows);
  }

  TEST_CASE("a non-empty, incompatible or foreign destination is a conflict") {
    Fixture fx;
    fx.copy(fx.request(), {fx.dst.get()});
    CHECK_THROWS_AS(fx.plan(fx.request()), ConflictError);
    auto r = fx.request();
    r.src_address = "other:s";
    r.resume = true;
    CHECK_THROWS_AS(fx.plan(r), ConflictError);  // not a copy of this source
    r = fx.request();
    r.append = true;
    const auto p = fx.plan(r);
    CHECK(p.base == fx.dst->dataset_info("d")->next_index);
    backends::DatasetSpec other;
    other.name = "e";
    other.row_shape = {6};
    fx.dst->create_dataset(other);
    r.dst_dataset = "e";
    CHECK_THROWS_AS(fx.plan(r), ConflictError);
    // Both specs read as every other message describes a spec (backends/common/catalog).
    CHECK_THROWS_WITH_AS(fx.plan(r),
                         doctest::Contains("is float32 (6,) cosine, no labels, the source is float16 (2, 3) cosine, "
                                           "labels int64 () (use --replace"),
                         ConflictError);
    r.append = false;
    r.replace = true;
    CHECK(fx.plan(r).drop_first);
  }

  TEST_CASE("after a failed block, --resume finishes with no duplicate and no gap") {
    Fixture fx;
    auto inner = backends::create_backend(fx.b);
    FailingWriter failing(*inner, 3 * 40 + 1);  // the block of source positions 40..49
    CHECK_THROWS_WITH(fx.copy(fx.request(), {&failing}), "injected failure");
    const auto mark = fx.dst->dataset_info("d")->spec.metadata["ingest_watermark"].get<int64_t>();
    CHECK(mark == 40);  // four blocks of 10 committed, the resume point written
    auto r = fx.request();
    r.resume = true;
    const auto p = fx.plan(r);
    CHECK(p.start == 40);
    FailingWriter counting(*inner, -1);
    fx.copy(r, {&counting});
    CHECK(counting.written() == k_rows - 40);
    CHECK(fx.dst->count("d", nullptr) == k_rows);
    CHECK(fx.compare().equal());
  }

  TEST_CASE("rows a destination cannot hold exactly are refused by name, or lose only their metadata") {
    RowBatch b;
    b.ids = {"ok", "6BA7B810-9DAD-11D1-80B4-00C04FD430C8"};
    b.indices = {0, 1};
    b.data = Array(DType::f32, {2, 2});
    b.metadata = {json::object(), json::object()};
    auto problem = transfer::make_exact("qdrant", "d", b, false, nullptr);
    REQUIRE(problem);
    CHECK(problem->find("row \"6BA7B810-9DAD-11D1-80B4-00C04FD430C8\"") != std::string::npos);
    CHECK_FALSE(transfer::make_exact("pgvector", "d", b, false, nullptr));
    b.metadata[0] = json{{"s", std::string("a\0b", 3)}};
    problem = transfer::make_exact("pgvector", "d", b, false, nullptr);
    REQUIRE(problem);
    CHECK(problem->find("row \"ok\"") != std::string::npos);
    CHECK(problem->find("--allow-lossy metadata") != std::string::npos);
    int64_t lossy = 0;
    CHECK_FALSE(transfer::make_exact("pgvector", "d", b, true, &lossy));
    CHECK(lossy == 1);
    CHECK(b.metadata[0].is_null());
    b.metadata[1] = json{{"big", std::string(50000, 'x')}};
    problem = transfer::make_exact("pinecone", "d", b, false, nullptr);
    REQUIRE(problem);
    CHECK(problem->find("40960") != std::string::npos);
    CHECK_FALSE(transfer::make_exact("local", "d", b, false, nullptr));
  }

  TEST_CASE("checkpoints are copied in epoch order; existing ones conflict, are skipped or overwritten") {
    Fixture fx;
    for (int64_t e : {3, 1, 2}) {
      backends::Checkpoint c;
      c.model = "m";
      c.epoch = e;
      c.arrays["parameters"] = testutil::random_f32(2, 2, static_cast<uint32_t>(e));
      c.metrics["loss"] = 1.0 / static_cast<double>(e);
      fx.src->checkpoints().save_checkpoint(c);
    }
    using transfer::ExistingCheckpoint;
    auto done = transfer::copy_checkpoints(*fx.src, *fx.dst, "m", ExistingCheckpoint::conflict, false);
    CHECK(done.copied == std::vector<std::string>{"m@1", "m@2", "m@3"});
    const auto latest = fx.dst->checkpoints().load_checkpoint("m@latest");
    CHECK(latest.epoch == 3);
    CHECK(latest.arrays.at("parameters") == testutil::random_f32(2, 2, 3));
    CHECK(latest.metrics.at("loss") == doctest::Approx(1.0 / 3));
    CHECK_THROWS_AS(transfer::copy_checkpoints(*fx.src, *fx.dst, "m", ExistingCheckpoint::conflict, false),
                    ConflictError);
    done = transfer::copy_checkpoints(*fx.src, *fx.dst, "m", ExistingCheckpoint::skip, false);
    CHECK(done.skipped.size() == 3);
    done = transfer::copy_checkpoints(*fx.src, *fx.dst, "m", ExistingCheckpoint::overwrite, false);
    CHECK(done.copied.size() == 3);
    CHECK_THROWS_AS(transfer::copy_checkpoints(*fx.src, *fx.dst, "none", ExistingCheckpoint::skip, false),
                    NotFoundError);
  }
}

TEST_SUITE("transfer::compare") {
  TEST_CASE("a comparison names the changed, missing and extra rows, and a changed order") {
    Fixture fx;
    fx.copy(fx.request(), {fx.dst.get()});
    fx.dst->update_row("d", "ü5", std::nullopt, json{{"r", 99}});
    fx.dst->delete_ids("d", {"ü9"});
    RowBatch extra = fx.src->read_rows("s", 0, 1);
    extra.ids = {"new"};
    extra.indices = {1000};
    fx.dst->write_rows("d", extra);
    transfer::CompareOptions o;
    o.block_rows = 8;
    auto r = fx.compare(o);
    CHECK_FALSE(r.equal());
    CHECK(r.differing.first == std::vector<std::string>{"ü5"});
    CHECK(r.missing.first == std::vector<std::string>{"ü9"});
    CHECK(r.extra.first == std::vector<std::string>{"new"});
    CHECK(r.src_rows == k_rows);
    CHECK(r.dst_rows == k_rows);

    // the same rows, one moved to the end: equal content, another order
    Fixture g;
    g.copy(g.request(), {g.dst.get()});
    RowBatch moved = g.dst->fetch("d", {"ü0"});
    moved.indices = {5000};
    g.dst->write_rows("d", moved);
    r = g.compare(o);
    CHECK(r.differing.count + r.missing.count + r.extra.count == 0);
    CHECK(r.order_differs);
    CHECK_FALSE(r.equal());
  }

  TEST_CASE("a sample compares the drawn rows by id, the same draw for the same seed") {
    Fixture fx;
    fx.copy(fx.request(), {fx.dst.get()});
    transfer::CompareOptions o;
    o.sample = k_rows;  // every row, drawn in random order
    o.block_rows = 7;
    CHECK(fx.compare(o).equal());
    fx.dst->update_row("d", "ü30", std::nullopt, json{{"r", -1}});
    auto r = fx.compare(o);
    CHECK(r.sampled);
    CHECK(r.compared == k_rows);
    CHECK(r.differing.first == std::vector<std::string>{"ü30"});
    o.sample = 10;
    o.seed = 42;
    const auto one = fx.compare(o);
    const auto two = fx.compare(o);
    CHECK(one.compared == 10);
    CHECK(one.differing.count == two.differing.count);
  }
}
