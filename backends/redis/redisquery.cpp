// SPDX-License-Identifier: MIT
// Queries on Redis: an exact scan of the chunks, 16 per round trip, scored with
// backends/common/blockscan.hpp; filters are evaluated client-side with Filter::matches.
#include "backends/redis/redisquery.hpp"

#include <algorithm>

#include "backends/common/blockscan.hpp"
#include "backends/common/rowcheck.hpp"
#include "backends/common/scoring.hpp"

namespace vstash::backends::redis {

namespace {
constexpr size_t k_scan_group = 16;
}  // namespace

std::optional<std::vector<std::vector<QueryHit>>> scan_query(DatasetRows& store, const Snapshot& snap,
                                                             const std::vector<float>& queries, size_t n,
                                                             const QueryOptions& options) {
  const bool filtered = options.filter != nullptr && !options.filter->empty();
  check_label_filter(options.filter, snap.keys.name, snap.spec.label_dtype, snap.spec.label_shape);
  const auto dim = static_cast<size_t>(snap.spec.dimension());
  BlockScan scan(snap.spec.metric, dim, queries.data(), n, static_cast<size_t>(std::max<int64_t>(options.top_k, 0)));
  std::vector<float> row(dim);
  for (int64_t first = 0; first < snap.nchunks; first += static_cast<int64_t>(k_scan_group)) {
    const int64_t last = std::min(snap.nchunks, first + static_cast<int64_t>(k_scan_group));
    auto chunks = store.read_chunks(snap, first, last, filtered, true);
    if (filtered && options.filter->uses_label()) {
      store.read_labels(snap, chunks);
    }
    for (const auto& chunk : chunks) {
      for (const auto& [slot, record] : chunk.records) {
        if (filtered && !options.filter->matches(decode_record(record).second,
                                                 store.label_of(snap, chunk, slot, *options.filter))) {
          continue;
        }
        store.row_as_float(snap, chunk.samples, slot, row);
        std::copy(row.begin(), row.end(), scan.next_row(chunk.n * k_chunk_rows + slot));
      }
    }
  }
  std::vector<std::vector<QueryHit>> out;
  out.reserve(n);
  for (const auto& best : scan.finish()) {
    std::vector<int64_t> indices;
    for (const auto& e : best) {
      indices.push_back(e.index);
    }
    auto rows = store.load(snap, indices, options.include_values);
    if (!rows) {
      return std::nullopt;
    }
    std::vector<QueryHit> hits;
    for (size_t i = 0; i < best.size(); ++i) {
      QueryHit h;
      h.id = rows->ids[i];
      h.index = best[i].index;
      h.score = best[i].score;
      if (options.include_values) {
        h.values = rows->data.row_as_float32(static_cast<int64_t>(i));
      }
      h.metadata = options.include_metadata ? rows->metadata[i] : json();
      hits.push_back(std::move(h));
    }
    out.push_back(std::move(hits));
  }
  return out;
}

}  // namespace vstash::backends::redis
