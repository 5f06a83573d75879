// SPDX-License-Identifier: MIT
// `vstash compact [DATASET]`: reclaims the space of deleted and replaced rows in stores that
// keep it until asked (the local store rewrites its segment files; see docs/backends.md).
#include <fmt/format.h>
#include <memory>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct CompactOptions {
  std::string dataset;  // empty: --dataset, else every dataset
};

namespace {

void run_compact(const CompactOptions& opt, Context& ctx) {
  const std::string dataset = !opt.dataset.empty() ? opt.dataset : ctx.dataset_given() ? ctx.dataset() : "";
  const auto lines = ctx.backend().compact(dataset);
  if (ctx.json()) {
    output::print_json({{"compacted", lines}});
    return;
  }
  std::string text;
  for (const auto& line : lines) {
    text += line + "\n";
  }
  if (lines.empty()) {
    text = fmt::format("{}: nothing to compact (the store reclaims space itself)\n", ctx.backend().kind());
  }
  output::print_text(text);
}

}  // namespace

void register_compact(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<CompactOptions>();
  auto* sub = parent.add_subcommand(
      "compact", "Reclaim the space of deleted and replaced rows (local store; every dataset unless one is named)");
  sub->add_option("dataset", opt->dataset, "Dataset to compact (default: --dataset, else every dataset)");
  sub->callback([opt, &ctx] { run_compact(*opt, ctx); });
}

}  // namespace vstash::commands
