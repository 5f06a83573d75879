// SPDX-License-Identifier: MIT
// `vstash progress [show] | record`: training workers report (run, rank, epoch, step,
// metrics) into the backend; show lists each run's workers with their last step and how
// long ago each reported, as a table or --json.
#include <fmt/format.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <optional>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct ProgressShowOptions {
  std::string run;
};
struct ProgressRecordOptions {
  std::string run;
  int64_t rank = 0;
  int64_t epoch = 0;
  int64_t step = 0;
  std::vector<std::string> metrics;
};

namespace {

// Seconds between an RFC 3339 UTC stamp ("2026-11-25T12:00:00.123Z") and now; nullopt if
// the stamp does not parse (a backend wrote something else).
std::optional<double> seconds_since(const std::string& stamp) {
  std::tm tm{};
  double fraction = 0;
  int consumed = 0;
  if (std::sscanf(stamp.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  if (stamp[static_cast<size_t>(consumed)] == '.') {
    fraction = std::strtod(stamp.c_str() + consumed, nullptr);
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t when = timegm(&tm);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return now - (static_cast<double>(when) + fraction);
}

// "4s", "3m12s", "2h05m", "3d04h": how long ago, for people.
std::string ago_text(std::optional<double> seconds) {
  if (!seconds) {
    return "?";
  }
  const auto s = static_cast<int64_t>(std::max(0.0, *seconds));
  if (s < 60) {
    return fmt::format("{}s", s);
  }
  if (s < 3600) {
    return fmt::format("{}m{:02d}s", s / 60, s % 60);
  }
  if (s < 86400) {
    return fmt::format("{}h{:02d}m", s / 3600, s % 3600 / 60);
  }
  return fmt::format("{}d{:02d}h", s / 86400, s % 86400 / 3600);
}

void run_progress_show(const ProgressShowOptions& opt, Context& ctx) {
  ctx.only_reads();
  const auto records = ctx.backend().progress().list_progress(opt.run);
  if (ctx.json()) {
    auto arr = nlohmann::json::array();
    for (const auto& r : records) {
      const auto since = seconds_since(r.updated_at);
      arr.push_back({{"run", r.run},
                     {"rank", r.rank},
                     {"epoch", r.epoch},
                     {"step", r.step},
                     {"metrics", r.metrics},
                     {"updated_at", r.updated_at},
                     {"seconds_since_update", since ? nlohmann::json(*since) : nlohmann::json(nullptr)}});
    }
    output::print_json({{"progress", arr}});
    return;
  }
  if (records.empty()) {
    ctx.note(opt.run.empty() ? "no progress recorded" : fmt::format("no progress recorded for run \"{}\"", opt.run));
    return;
  }
  output::TextTable table({"run", "rank", "epoch", "step", "ago", "updated_at", "metrics"},
                          {false, true, true, true, true, false, false});
  for (const auto& r : records) {
    std::string metrics;
    for (const auto& [k, v] : r.metrics) {
      metrics += fmt::format("{}{}={}", metrics.empty() ? "" : " ", k, output::format_number(v));
    }
    table.add_row({r.run, std::to_string(r.rank), std::to_string(r.epoch), std::to_string(r.step),
                   ago_text(seconds_since(r.updated_at)), r.updated_at, metrics.empty() ? "-" : metrics});
  }
  output::print_text(table.render());
}

void run_progress_record(const ProgressRecordOptions& opt, Context& ctx) {
  if (opt.run.empty()) {
    throw UsageError("progress record: --run must not be empty");
  }
  if (opt.rank < 0 || opt.epoch < 0 || opt.step < 0) {
    throw UsageError(fmt::format("progress record: --rank {}, --epoch {} and --step {} must not be negative", opt.rank,
                                 opt.epoch, opt.step));
  }
  backends::ProgressRecord r;
  r.run = opt.run;
  r.rank = opt.rank;
  r.epoch = opt.epoch;
  r.step = opt.step;
  r.metrics = parse_metric_pairs(opt.metrics);
  ctx.backend().progress().record_progress(r);
  if (ctx.json()) {
    output::print_json(
        {{"run", r.run}, {"rank", r.rank}, {"epoch", r.epoch}, {"step", r.step}, {"metrics", r.metrics}});
  }
}

}  // namespace

void register_progress(CLI::App& parent, Context& ctx) {
  auto* cmd = parent.add_subcommand(
      "progress", "Training progress: `progress [show]` lists workers' last reports, `progress record` adds one");
  cmd->require_subcommand(0, 1);

  // `vstash progress --run R` is `vstash progress show --run R`.
  auto show = std::make_shared<ProgressShowOptions>();
  cmd->add_option("--run", show->run, "Only this run")->envname("VSTASH_RUN");
  auto* s = cmd->add_subcommand("show", "Each run's workers: epoch, last step, how long since they reported, metrics");
  s->add_option("--run", show->run, "Only this run")->envname("VSTASH_RUN");
  s->callback([show, &ctx] { run_progress_show(*show, ctx); });
  cmd->callback([cmd, show, &ctx] {
    if (cmd->get_subcommands().empty()) {
      run_progress_show(*show, ctx);
    }
  });

  auto rec = std::make_shared<ProgressRecordOptions>();
  auto* r = cmd->add_subcommand("record", "Record a worker's progress (replaces its previous report)");
  r->add_option("--run", rec->run, "Run name")->required()->envname("VSTASH_RUN");
  r->add_option("--rank", rec->rank, "Worker rank (default 0)")->envname("VSTASH_RANK");
  r->add_option("--epoch", rec->epoch, "Epoch (default 0)")->envname("VSTASH_EPOCH");
  r->add_option("--step", rec->step, "Step within the run (default 0)")->envname("VSTASH_STEP");
  r->add_option("--metric", rec->metrics, "NAME=NUMBER (repeatable)");
  r->callback([rec, &ctx] { run_progress_record(*rec, ctx); });
}

}  // namespace vstash::commands
