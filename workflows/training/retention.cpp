// SPDX-License-Identifier: MIT
// Checkpoint retention planning and application (rules in retention.hpp).
#include "workflows/training/retention.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <set>

#include "src/errors.hpp"

namespace vstash::training {

using backends::CheckpointInfo;

RetentionPolicy RetentionPolicy::parse(int64_t keep, const std::string& keep_best) {
  RetentionPolicy policy;
  if (keep > 0) {
    policy.keep_last = keep;
  }
  if (keep_best.empty()) {
    return policy;
  }
  const auto colon = keep_best.rfind(':');
  const std::string direction = colon == std::string::npos ? "" : keep_best.substr(colon + 1);
  const std::string metric = colon == std::string::npos ? keep_best : keep_best.substr(0, colon);
  if (metric.empty() || (direction != "min" && direction != "max")) {
    throw UsageError(fmt::format("--keep-best \"{}\": expected METRIC:min or METRIC:max", keep_best));
  }
  policy.best_metric = metric;
  policy.best_is_max = direction == "max";
  return policy;
}

RetentionPlan plan_retention(const std::vector<CheckpointInfo>& checkpoints, const RetentionPolicy& policy) {
  std::vector<CheckpointInfo> sorted = checkpoints;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.epoch < b.epoch; });
  RetentionPlan plan;
  if (policy.empty() || sorted.empty()) {
    plan.keep = std::move(sorted);
    return plan;
  }
  std::set<int64_t> kept{sorted.back().epoch};
  if (policy.keep_last) {
    const auto n = static_cast<size_t>(std::min<int64_t>(*policy.keep_last, static_cast<int64_t>(sorted.size())));
    for (size_t i = sorted.size() - n; i < sorted.size(); ++i) {
      kept.insert(sorted[i].epoch);
    }
  }
  if (policy.best_metric) {
    std::optional<std::pair<double, int64_t>> best;  // (value, epoch)
    for (const auto& c : sorted) {
      const auto it = c.metrics.find(*policy.best_metric);
      if (it == c.metrics.end() || std::isnan(it->second)) {
        continue;
      }
      // Ascending epochs with >= / <= let a later equal value win the tie.
      const bool better = !best || (policy.best_is_max ? it->second >= best->first : it->second <= best->first);
      if (better) {
        best = std::pair{it->second, c.epoch};
      }
    }
    if (best) {
      kept.insert(best->second);
    }
  }
  for (auto& c : sorted) {
    (kept.count(c.epoch) ? plan.keep : plan.remove).push_back(std::move(c));
  }
  return plan;
}

RetentionPlan apply_retention(backends::Backend& backend, const std::string& model, const RetentionPolicy& policy) {
  backends::validate_model_name(model);
  auto listed = backend.checkpoints().list_checkpoints(model);
  std::erase_if(listed, [&](const CheckpointInfo& c) { return c.model != model; });
  RetentionPlan plan = plan_retention(listed, policy);
  for (const auto& c : plan.remove) {
    backend.checkpoints().delete_checkpoint(backends::checkpoint_path(c.model, c.epoch));
  }
  return plan;
}

}  // namespace vstash::training
