// SPDX-License-Identifier: MIT
// `vstash progress`: training workers' latest progress records.
#include <fmt/format.h>
#include <memory>

#include "commands.hpp"
#include "common.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct ProgressOptions {
  std::string run;
};

namespace {

void run_progress(const ProgressOptions& opt, Context& ctx) {
  const auto records = ctx.backend().list_progress(opt.run);
  if (ctx.json()) {
    auto arr = nlohmann::json::array();
    for (const auto& r : records) {
      arr.push_back({{"run", r.run},
                     {"rank", r.rank},
                     {"epoch", r.epoch},
                     {"step", r.step},
                     {"metrics", r.metrics},
                     {"updated_at", r.updated_at}});
    }
    output::print_json({{"progress", arr}});
    return;
  }
  output::TextTable table({"run", "rank", "epoch", "step", "updated_at", "metrics"},
                          {false, true, true, true, false, false});
  for (const auto& r : records) {
    std::string metrics;
    for (const auto& [k, v] : r.metrics) {
      metrics += fmt::format("{}{}={}", metrics.empty() ? "" : " ", k, v);
    }
    table.add_row({r.run, std::to_string(r.rank), std::to_string(r.epoch), std::to_string(r.step), r.updated_at,
                   metrics.empty() ? "-" : metrics});
  }
  output::print_text(table.render());
}

}  // namespace

void register_progress(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<ProgressOptions>();
  auto* sub = parent.add_subcommand("progress", "Show training progress records");
  sub->add_option("--run", opt->run, "Only this run")->envname("VSTASH_RUN");
  sub->callback([opt, &ctx] { run_progress(*opt, ctx); });
}

}  // namespace vstash::commands
