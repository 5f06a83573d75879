// SPDX-License-Identifier: MIT
// `vstash stats`: datasets (rows, dimension, bytes), checkpoints per model, store size.
#include <fmt/format.h>
#include <memory>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct StatsOptions {};

namespace {

// The backend's own figures (server and extension versions, index parameters, cache hits,
// ...) as "a.b: value" lines, so people see in text what scripts get under "extra".
void flatten_extra(const nlohmann::json& j, const std::string& prefix, std::string& out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [key, value] : j.items()) {
      flatten_extra(value, prefix.empty() ? key : prefix + "." + key, out);
    }
    return;
  }
  out += fmt::format("{}: {}\n", prefix, j.is_string() ? j.get<std::string>() : j.dump());
}

void run_stats(const StatsOptions&, Context& ctx) {
  ctx.only_reads();
  auto stats = ctx.backend().stats();
  if (ctx.dataset_given()) {
    const std::string only = ctx.dataset();
    std::erase_if(stats.datasets, [&](const backends::DatasetInfo& d) { return d.spec.name != only; });
    if (stats.datasets.empty()) {
      throw NotFoundError(fmt::format("dataset \"{}\" does not exist", only));
    }
  }
  if (ctx.json()) {
    auto datasets = nlohmann::json::array();
    for (const auto& d : stats.datasets) {
      datasets.push_back(dataset_json(d));
    }
    output::print_json({{"backend", stats.backend},
                        {"location", stats.location},
                        {"store_bytes", stats.store_bytes},
                        {"datasets", datasets},
                        {"checkpoints_per_model", stats.checkpoints_per_model},
                        {"extra", stats.extra}});
    return;
  }
  std::string text = fmt::format("backend: {} ({})\nstore size: {}\n", stats.backend, stats.location,
                                 output::human_bytes(stats.store_bytes));
  if (!stats.datasets.empty()) {
    output::TextTable table({"dataset", "rows", "dim", "dtype", "shape", "metric", "labels", "bytes"},
                            {false, true, true, false, false, false, false, true});
    for (const auto& d : stats.datasets) {
      const auto& s = d.spec;
      table.add_row({s.name, std::to_string(d.rows), std::to_string(s.dimension()), std::string(dtype_name(s.dtype)),
                     shape_to_string(s.row_shape), std::string(backends::metric_name(s.metric)),
                     s.label_dtype ? std::string(dtype_name(*s.label_dtype)) : "-", output::human_bytes(d.bytes)});
    }
    text += "\n" + table.render();
  }
  if (!stats.checkpoints_per_model.empty() && !ctx.dataset_given()) {
    output::TextTable table({"model", "checkpoints"}, {false, true});
    for (const auto& [model, n] : stats.checkpoints_per_model) {
      table.add_row({model, std::to_string(n)});
    }
    text += "\n" + table.render();
  }
  if (stats.extra.is_object() && !stats.extra.empty()) {
    std::string details;
    flatten_extra(stats.extra, "", details);
    text += "\n" + details;
  }
  output::print_text(text);
}

}  // namespace

void register_stats(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<StatsOptions>();
  auto* sub = parent.add_subcommand("stats", "Show datasets, checkpoints and store size (--dataset: one dataset)");
  sub->callback([opt, &ctx] { run_stats(*opt, ctx); });
}

}  // namespace vstash::commands
