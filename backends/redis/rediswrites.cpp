// SPDX-License-Identifier: MIT
// The commands that write a batch's samples, labels and ids into the chunked layout
// (RowStore::write sends them inside its WATCH + MULTI/EXEC, with the chunks' records).
#include <algorithm>
#include <fmt/format.h>

#include "../../src/errors.hpp"
#include "redisrows.hpp"

namespace vstash::backends::redis {


std::vector<size_t> order_by_target(const std::string& dataset, const std::vector<int64_t>& target) {
  std::vector<size_t> order(target.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return target[a] < target[b]; });
  for (size_t j = 1; j < order.size(); ++j) {
    if (target[order[j]] == target[order[j - 1]]) {
      throw UsageError(fmt::format("dataset \"{}\": index {} appears twice in one batch", dataset, target[order[j]]));
    }
  }
  return order;
}

RowWrites plan_row_writes(const DatasetKeys& k, const std::string& inc, size_t row_bytes, size_t label_bytes,
                          const RowBatch& batch, const std::vector<size_t>& order, const std::vector<int64_t>& target) {
  RowWrites plan;
  auto own = [&](std::string s) -> std::string_view { return plan.owned.emplace_back(std::move(s)); };
  // The bytes of rows order[first .. first+count) of a: a view when they are consecutive in
  // the batch (an ingest block always is), else a copy.
  auto blob = [&](const Array& a, size_t width, size_t first, size_t count) -> std::string_view {
    bool contiguous = true;
    for (size_t j = 1; j < count && contiguous; ++j) {
      contiguous = order[first + j] == order[first] + j;
    }
    if (contiguous) {
      return {reinterpret_cast<const char*>(a.data()) + order[first] * width, count * width};
    }
    std::string s;
    s.reserve(count * width);
    for (size_t j = 0; j < count; ++j) {
      s.append(reinterpret_cast<const char*>(a.data()) + order[first + j] * width, width);
    }
    return own(std::move(s));
  };
  const size_t n = order.size();
  for (size_t begin = 0; begin < n;) {
    const int64_t c = chunk_of(target[order[begin]]);
    size_t end = begin;
    while (end < n && chunk_of(target[order[end]]) == c) {
      ++end;
    }
    // Runs of consecutive indices inside the chunk: one SETRANGE each (SET for a whole chunk).
    const auto ck = own(k.chunk(inc, c));
    const auto lk = batch.labels ? own(k.labels(inc, c)) : std::string_view();
    for (size_t run = begin; run < end;) {
      size_t stop = run + 1;
      while (stop < end && target[order[stop]] == target[order[stop - 1]] + 1) {
        ++stop;
      }
      const auto count = stop - run;
      const bool whole = count == static_cast<size_t>(k_chunk_rows);
      const auto slot = static_cast<size_t>(slot_of(target[order[run]]));
      const auto data = blob(batch.data, row_bytes, run, count);
      if (whole) {
        plan.commands.push_back({"SET", ck, data});
      } else {
        plan.commands.push_back({"SETRANGE", ck, own(std::to_string(slot * row_bytes)), data});
      }
      if (batch.labels) {
        const auto labels = blob(*batch.labels, label_bytes, run, count);
        if (whole) {
          plan.commands.push_back({"SET", lk, labels});
        } else {
          plan.commands.push_back({"SETRANGE", lk, own(std::to_string(slot * label_bytes)), labels});
        }
      }
      run = stop;
    }
    begin = end;
  }
  const auto ids_key = own(k.ids(inc));
  for (size_t begin = 0; begin < n; begin += k_fields_per_command) {
    auto& args = plan.commands.emplace_back(std::vector<std::string_view>{"HSET", ids_key});
    for (size_t i = begin; i < std::min(n, begin + k_fields_per_command); ++i) {
      args.push_back(batch.ids[i]);
      args.push_back(own(std::to_string(target[i])));
    }
  }
  return plan;
}

}  // namespace vstash::backends::redis
