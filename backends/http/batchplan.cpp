// SPDX-License-Identifier: MIT
// Byte- and count-bounded request batches (plan_batches, declared in httpclient.hpp).
#include <algorithm>

#include <fmt/format.h>

#include "backends/http/httpclient.hpp"
#include "src/errors.hpp"

namespace vstash::backends::http {

std::vector<std::pair<size_t, size_t>> plan_batches(const std::vector<size_t>& item_bytes, size_t max_items,
                                                    size_t max_bytes, size_t overhead_bytes, size_t separator_bytes) {
  // A zero max_items means "no count limit".
  if (max_items == 0) {
    max_items = item_bytes.size() + 1;
  }
  std::vector<std::pair<size_t, size_t>> plan;
  size_t begin = 0;
  size_t bytes = overhead_bytes;
  for (size_t i = 0; i < item_bytes.size(); ++i) {
    if (overhead_bytes + item_bytes[i] > max_bytes) {
      throw UsageError(fmt::format("item {}: {} bytes serialized, more than the {} byte request limit", i,
                                   item_bytes[i], max_bytes - std::min(max_bytes, overhead_bytes)));
    }
    size_t count = i - begin;
    size_t added = item_bytes[i] + (count > 0 ? separator_bytes : 0);
    if (count > 0 && (count >= max_items || bytes + added > max_bytes)) {
      plan.emplace_back(begin, i);
      begin = i;
      bytes = overhead_bytes;
      added = item_bytes[i];
    }
    bytes += added;
  }
  if (begin < item_bytes.size()) {
    plan.emplace_back(begin, item_bytes.size());
  }
  return plan;
}

}  // namespace vstash::backends::http
