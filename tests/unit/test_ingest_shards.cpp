// SPDX-License-Identifier: MIT
// The rules of a sharded load (workflows/ingest/pipeline.hpp): rank slices cover the rows
// once, in order, at floor(r * N / W); each rank's resume point is its own key; where a rank
// starts in a dataset that exists.
#include <doctest/doctest.h>

#include "src/errors.hpp"
#include "workflows/ingest/pipeline.hpp"

using namespace vstash;
using ingest::Shard;

TEST_SUITE("ingest::shards") {
  TEST_CASE("rank slices are contiguous, disjoint, cover every row and match floor(r * N / W)") {
    for (int64_t total : {0, 1, 3, 4, 5, 1003, 1000000}) {
      for (int64_t world : {1, 2, 3, 4, 7, 64}) {
        int64_t next = 0;
        for (int64_t rank = 0; rank < world; ++rank) {
          const auto s = ingest::slice_rows(total, Shard{rank, world});
          CHECK(s.begin == next);
          CHECK(s.begin == rank * total / world);
          CHECK(s.end >= s.begin);
          next = s.end;
        }
        CHECK(next == total);
      }
    }
    CHECK(ingest::slice_rows(10, Shard{}).begin == 0);
    CHECK(ingest::slice_rows(10, Shard{}).end == 10);
    // No overflow of r * N for a huge N.
    const int64_t huge = int64_t{1} << 62;
    CHECK(ingest::slice_rows(huge, Shard{(1 << 20) - 1, 1 << 20}).end == huge);
    CHECK(ingest::slice_rows(huge, Shard{1, 3}).begin == huge / 3);
  }

  TEST_CASE("each rank keeps its own resume point") {
    CHECK(ingest::watermark_key(Shard{}) == "ingest_watermark");
    CHECK(ingest::watermark_key(Shard{2, 4}) == "ingest_watermark_rank_2");
  }

  TEST_CASE("where a rank starts in a dataset that exists") {
    backends::DatasetInfo info;
    info.spec.name = std::string("d");
    const Shard shard{1, 4};
    const ingest::Slice slice = ingest::slice_rows(100, shard);  // [25, 50)
    info.rows = 0;
    CHECK(ingest::sharded_start(info, shard, slice, false, "ingest") == 25);  // empty, made elsewhere
    info.rows = 10;
    CHECK_THROWS_AS(ingest::sharded_start(info, shard, slice, true, "ingest"), ConflictError);  // not sharded
    info.spec.metadata = {{"ingest_world_size", 4}, {"ingest_watermark_rank_0", 10}};
    CHECK(ingest::sharded_start(info, shard, slice, false, "ingest") == 25);  // another rank's rows
    info.spec.metadata["ingest_watermark_rank_1"] = 40;
    CHECK_THROWS_WITH_AS(ingest::sharded_start(info, shard, slice, false, "ingest"),
                         "dataset \"d\": ingest rank 1 of 4 already started: pass --resume to finish it",
                         ConflictError);
    CHECK(ingest::sharded_start(info, shard, slice, true, "ingest") == 40);
    info.spec.metadata["ingest_watermark_rank_1"] = 99;  // clamped into the slice
    CHECK(ingest::sharded_start(info, shard, slice, true, "ingest") == 50);
    CHECK_THROWS_WITH_AS(ingest::sharded_start(info, Shard{1, 2}, ingest::slice_rows(100, Shard{1, 2}), true, "ingest"),
                         "--world-size 2: dataset \"d\" is being loaded with --world-size 4", ConflictError);
  }
}
