// SPDX-License-Identifier: MIT
// `vstash check SRC DST`: do two datasets (any stores) hold the same rows? Exit 0 when they
// are equal, 1 when they differ (a result, printed on stdout, not a failure to run; the error
// line says so), other codes as usual. The algorithm is workflows/transfer/compare.hpp.
#include <fmt/format.h>
#include <chrono>
#include <memory>
#include <optional>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "commands/transfer.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct CheckOptions {
  std::string src, dst;
  int64_t sample = 0;  // 0: every row
  uint64_t seed = 1;
  int64_t block_rows = 10240;
  int64_t listed = 5;
};

namespace {

void run_check(const CheckOptions& opt, Context& ctx) {
  transfer::CompareOptions o;
  check_range("--block-rows", opt.block_rows, 1, int64_t{1} << 24);
  check_range("--list", opt.listed, 0, 10000);
  o.block_rows = opt.block_rows;
  o.listed = static_cast<size_t>(opt.listed);
  o.seed = opt.seed;
  if (opt.sample != 0) {
    check_range("--sample", opt.sample, 1, int64_t{1} << 40);
    o.sample = opt.sample;
  }
  Endpoint src = open_endpoint(ctx, opt.src, "SRC", backends::Access::read_only);
  Endpoint dst = open_endpoint(ctx, opt.dst, "DST", backends::Access::read_only);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = compare_endpoints(src, dst, o, ctx);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (ctx.json()) {
    nlohmann::json j = compare_json(r);
    j["source"] = src.label;
    j["destination"] = dst.label;
    j["seconds"] = secs;
    j["seed"] = o.sample ? nlohmann::json(o.seed) : nlohmann::json(nullptr);
    output::print_json(j);
  } else {
    print_differences(r, src.label, dst.label);
  }
  if (!r.equal()) {
    throw Error(fmt::format("check: \"{}\" and \"{}\" differ", src.label, dst.label));
  }
}

}  // namespace

void register_check(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<CheckOptions>();
  auto* sub = parent.add_subcommand("check", "Compare two datasets row by row (exit 0 equal, 1 different)");
  sub->add_option("SRC", opt->src, "PROFILE:DATASET or DATASET (current profile)")->required();
  sub->add_option("DST", opt->dst, "PROFILE:DATASET or DATASET")->required();
  sub->add_option("--sample", opt->sample, "Compare N random source rows (by id) instead of every row");
  sub->add_option("--seed", opt->seed, "The sample's random seed (default 1)");
  sub->add_option("--block-rows", opt->block_rows, "Rows read per block from each side (default 10240)");
  sub->add_option("--list", opt->listed, "Ids listed per kind of difference (default 5)");
  sub->callback([opt, &ctx] { run_check(*opt, ctx); });
}

}  // namespace vstash::commands
