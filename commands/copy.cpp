// SPDX-License-Identifier: MIT
// `vstash copy SRC DST`: a dataset (or a model's checkpoints) from one store to another,
// streamed, resumable and optionally verified. The algorithm is workflows/transfer/copy.hpp; this
// file opens the two ends, prints and reports. Addresses: workflows/transfer/address.hpp.
#include <fmt/format.h>
#include <chrono>
#include <memory>
#include <set>

#include "backends/registry.hpp"
#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "commands/ingestsource.hpp"
#include "commands/transfer.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"
#include "src/progress.hpp"
#include "workflows/transfer/address.hpp"
#include "workflows/transfer/checkpoints.hpp"
#include "workflows/transfer/compare.hpp"
#include "workflows/transfer/copy.hpp"

namespace vstash::commands {

struct CopyOptions {
  std::string src, dst;
  std::string checkpoints;  // MODEL: copy its checkpoints instead of a dataset
  bool all = false;         // every model's checkpoints
  std::vector<std::string> allow_lossy;
  int writers = 0;
  int64_t block_rows = 0;
  bool append = false, replace = false, resume = false, dry_run = false, verify = false;
  ShardFlags shards;  // --rank/--world-size
};

namespace {

void run_copy_checkpoints(const CopyOptions& opt, Context& ctx) {
  if (opt.append) {
    throw UsageError("copy --checkpoints: --append has no meaning for checkpoints (--replace or --resume)");
  }
  Endpoint src = open_store(ctx, opt.src, "SRC", backends::Access::read_only);
  Endpoint dst = open_store(ctx, opt.dst, "DST", backends::Access::read_write);
  const auto existing = opt.replace  ? transfer::ExistingCheckpoint::overwrite
                        : opt.resume ? transfer::ExistingCheckpoint::skip
                                     : transfer::ExistingCheckpoint::conflict;
  const auto t0 = std::chrono::steady_clock::now();
  const auto done = transfer::copy_checkpoints(*src.backend, *dst.backend, opt.all ? "" : opt.checkpoints, existing,
                                               opt.dry_run, fmt::format("profile \"{}\"", src.profile.name()));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (ctx.json()) {
    output::print_json({{"source", src.label},
                        {"destination", dst.label},
                        {"dry_run", opt.dry_run},
                        {"checkpoints", done.copied},
                        {"skipped", done.skipped.size()},
                        {"bytes", done.bytes},
                        {"seconds", secs}});
    return;
  }
  output::print_text(fmt::format("{} {} checkpoint(s) from \"{}\" to \"{}\" ({}){}\n",
                                 opt.dry_run ? "dry run: would copy" : "copied", done.copied.size(), src.label,
                                 dst.label, output::human_bytes(done.bytes),
                                 done.skipped.empty() ? "" : fmt::format(", {} already there", done.skipped.size())));
}

// The flags' own checks; returns whether --allow-lossy metadata was given.
bool check_copy_flags(const CopyOptions& opt) {
  if (opt.writers != 0) {
    check_range("--writers", opt.writers, 1, 64);
  }
  if (opt.block_rows != 0) {
    check_range("--block-rows", opt.block_rows, 1, int64_t{1} << 24);
  }
  if (int(opt.append) + int(opt.replace) + int(opt.resume) > 1) {
    throw UsageError("copy: --append, --replace and --resume exclude each other");
  }
  bool lossy_metadata = false;
  for (const auto& what : opt.allow_lossy) {
    if (what != "metadata") {
      throw UsageError(fmt::format("--allow-lossy: unknown conversion \"{}\" (known: metadata)", what));
    }
    lossy_metadata = true;
  }
  opt.shards.check();
  if (opt.verify && opt.shards.shard.sharded()) {
    throw UsageError("copy --rank: --verify compares whole datasets; run `vstash check` once every rank has finished");
  }
  if (opt.verify && opt.append) {
    throw UsageError(
        "copy: --verify compares whole datasets, and after --append the destination holds more rows "
        "(run `vstash check` on what you expect instead)");
  }
  return lossy_metadata;
}

// --dry-run: reads the rows to be copied and checks that each fits the destination; writes nothing.
void dry_run_copy(Endpoint& src, const Endpoint& dst, const transfer::CopyPlan& plan, const transfer::CopyRequest& req,
                  nlohmann::json& result, Context& ctx) {
  const int64_t todo = plan.total - plan.start;
  ProgressBar bar("scan", todo, ctx.show_progress());
  const auto problem = transfer::scan_exactness(*src.backend, plan, req, [&](int64_t done) { bar.update(done); });
  bar.finish();
  if (problem) {
    throw UsageError(*problem);
  }
  result["rows"] = todo;
  result["bytes"] = 0;
  if (!ctx.json()) {
    const char* how = plan.drop_first ? "replacing it" : plan.exists ? "into the existing dataset" : "creating it";
    output::print_text(
        fmt::format("dry run: would copy {} of {} rows from \"{}\" to \"{}\" ({}); every row fits; "
                    "nothing written\n",
                    todo, plan.total, src.label, dst.label, how));
  }
}

void copy_rows(const CopyOptions& opt, Endpoint& src, Endpoint& dst, const transfer::CopyPlan& plan,
               const transfer::CopyRequest& req, nlohmann::json& result, Context& ctx) {
  if (opt.writers > dst.backend->max_ingest_writers()) {
    throw UsageError(fmt::format("--writers: the {} backend takes at most {} writer(s) per dataset",
                                 dst.backend->kind(), dst.backend->max_ingest_writers()));
  }
  opt.shards.name_writer(*dst.backend);
  auto writers = writer_connections(dst, opt.writers > 0 ? opt.writers : dst.backend->ingest_writers(), ctx);
  for (backends::Backend* w : writers.pointers) {
    opt.shards.name_writer(*w);
  }
  if (plan.start > plan.first) {
    ctx.note(fmt::format("resuming at row {} of {}", plan.start, plan.total));
  }
  ProgressBar bar("copy", plan.total - plan.start, ctx.show_progress());
  const auto stats = transfer::run_copy(*src.backend, *dst.backend, writers.pointers, plan, req, [&](int64_t done) {
    bar.update(done);
    check_interrupted();
  });
  bar.finish();
  result["rows"] = stats.rows;
  result["bytes"] = stats.bytes;
  result["lossy_rows"] = stats.lossy_rows;
  result["writers"] = writers.pointers.size();
}

// --verify: compares the two datasets whole, prints, and fails when they differ.
void verify_copy(Endpoint& src, Endpoint& dst, nlohmann::json& result, Context& ctx) {
  const auto diff = compare_endpoints(src, dst, {}, ctx);
  result["verified"] = diff.equal();
  if (!ctx.json()) {
    print_differences(diff, src.label, dst.label);
  }
  if (ctx.json()) {
    output::print_json(result);
  }
  if (!diff.equal()) {
    throw Error(fmt::format("copy --verify: \"{}\" and \"{}\" differ after the copy", src.label, dst.label));
  }
}

void run_copy(const CopyOptions& opt, Context& ctx) {
  transfer::CopyRequest req;
  req.lossy_metadata = check_copy_flags(opt);
  if (!opt.checkpoints.empty() || opt.all) {
    run_copy_checkpoints(opt, ctx);
    return;
  }
  Endpoint src = open_endpoint(ctx, opt.src, "SRC", backends::Access::read_only);
  Endpoint dst = open_endpoint(ctx, opt.dst, "DST", backends::Access::read_write);
  if (src.dataset == dst.dataset && transfer::same_store(src.profile, dst.profile)) {
    throw UsageError(fmt::format("copy: SRC and DST are the same dataset \"{}\"", src.label));
  }
  const backends::DatasetInfo src_info = require_dataset(*src.backend, src.dataset);
  req.src_dataset = src.dataset;
  req.dst_dataset = dst.dataset;
  req.src_address = src.label;
  req.dst_address = dst.label;
  req.dst_kind = dst.backend->kind();
  req.append = opt.append;
  req.replace = opt.replace;
  req.resume = opt.resume;
  req.block_rows = opt.block_rows;
  req.shard = opt.shards.shard;
  const auto plan = transfer::plan_copy(src_info, dst.backend->dataset_info(dst.dataset), req);
  const int64_t todo = plan.total - plan.start;
  nlohmann::json result = {{"source", src.label},
                           {"destination", dst.label},
                           {"dry_run", opt.dry_run},
                           {"skipped", plan.start - plan.first},
                           {"verified", nullptr}};
  if (req.shard.sharded()) {
    result["rank"] = req.shard.rank;
    result["world_size"] = req.shard.world_size;
    result["first_row"] = plan.first;
    result["end_row"] = plan.total;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (opt.dry_run) {
    dry_run_copy(src, dst, plan, req, result, ctx);
  } else {
    copy_rows(opt, src, dst, plan, req, result, ctx);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result["seconds"] = secs;
  result["rows_per_second"] = secs > 0 && !opt.dry_run ? static_cast<double>(todo) / secs : 0.0;
  if (!opt.dry_run && !ctx.json()) {
    output::print_text(
        fmt::format("copied {} rows from \"{}\" to \"{}\" in {:.2f} s ({:.0f} rows/s){}\n", todo, src.label, dst.label,
                    secs, result["rows_per_second"].get<double>(),
                    plan.start > plan.first ? fmt::format(", {} already there", plan.start - plan.first) : ""));
  }
  if (opt.verify && !opt.dry_run) {
    verify_copy(src, dst, result, ctx);
    return;
  }
  if (ctx.json()) {
    output::print_json(result);
  }
}

}  // namespace

void register_copy(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<CopyOptions>();
  auto* sub = parent.add_subcommand("copy", "Copy a dataset, or a model's checkpoints, from one store to another");
  sub->add_option("SRC", opt->src, "PROFILE:DATASET or DATASET (current profile); with --checkpoints: PROFILE")
      ->required();
  sub->add_option("DST", opt->dst, "PROFILE:DATASET or DATASET; with --checkpoints: PROFILE")->required();
  sub->add_option("--checkpoints", opt->checkpoints, "Copy MODEL's checkpoints (every epoch) instead of a dataset");
  sub->add_flag("--all", opt->all, "With checkpoints: every model's checkpoints");
  sub->add_flag("--append", opt->append, "Add the rows after those of a non-empty destination");
  sub->add_flag("--replace", opt->replace, "Drop an existing destination dataset (or overwrite checkpoints) first");
  sub->add_flag("--resume", opt->resume,
                "Finish an interrupted copy of the same source (checkpoints: skip those "
                "already copied)");
  sub->add_option("--allow-lossy", opt->allow_lossy,
                  "Accept a conversion the destination needs: metadata (copy rows whose metadata it cannot hold "
                  "without their metadata)")
      ->delimiter(',');
  sub->add_option("--writers", opt->writers,
                  "Blocks written at once, each over its own connection (default: the "
                  "destination's choice)");
  sub->add_option("--block-rows", opt->block_rows, "Rows per block (default 10240, fewer for wide rows)");
  sub->add_flag("--dry-run", opt->dry_run, "Read the source, check the destination can hold it, write nothing");
  sub->add_flag("--verify", opt->verify, "Compare source and destination afterwards (as `vstash check`)");
  opt->shards.add_to(*sub, "COPY", "copy");
  sub->callback([opt, &ctx] { run_copy(*opt, ctx); });
}

}  // namespace vstash::commands
