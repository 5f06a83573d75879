// SPDX-License-Identifier: MIT
// `vstash checkpoint save|load|list|prune`: model state (named arrays, metrics, metadata) by
// MODEL@EPOCH; MODEL@latest resolves to the highest epoch. Saves are atomic, an existing epoch
// is replaced only with --overwrite, and latest only moves forward (the backend's contract);
// retention (--keep, --keep-best) runs after a save.
#include <fmt/format.h>
#include <memory>
#include <set>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/output.hpp"
#include "workflows/training/retention.hpp"

namespace vstash::commands {

struct CheckpointSaveOptions {
  std::string model;
  int64_t epoch = -1;
  std::string params;
  std::vector<std::string> metrics;
  std::string metadata;
  int64_t keep = -1;  // -1: not given
  std::string keep_best;
  bool overwrite = false;
};
struct CheckpointPruneOptions {
  std::string model;
  int64_t keep = -1;  // -1: not given
  std::string keep_best;
  bool dry_run = false;
};
struct CheckpointLoadOptions {
  std::string path;
  std::string output;
};
struct CheckpointListOptions {
  std::string model;
};

namespace {

std::string metrics_text(const std::map<std::string, double>& metrics) {
  std::string out;
  for (const auto& [k, v] : metrics) {
    out += fmt::format("{}{}={}", out.empty() ? "" : " ", k, v);
  }
  return out.empty() ? "-" : out;
}

nlohmann::json paths_json(const std::vector<backends::CheckpointInfo>& list) {
  auto arr = nlohmann::json::array();
  for (const auto& c : list) {
    arr.push_back(c.path);
  }
  return arr;
}

training::RetentionPolicy retention_of(int64_t keep, const std::string& keep_best) {
  if (keep != -1 && keep < 1) {
    throw UsageError(fmt::format("--keep: must be at least 1, got {}", keep));
  }
  return training::RetentionPolicy::parse(keep == -1 ? 0 : keep, keep_best);
}

void run_checkpoint_save(const CheckpointSaveOptions& opt, Context& ctx) {
  backends::validate_model_name(opt.model);
  if (opt.epoch < 0) {
    throw UsageError(fmt::format("--epoch: must be non-negative, got {}", opt.epoch));
  }
  // Parsed before saving so a malformed --keep-best fails without writing anything.
  const auto policy = retention_of(opt.keep, opt.keep_best);
  backends::Checkpoint cp;
  cp.model = opt.model;
  cp.epoch = opt.epoch;
  cp.metrics = parse_metric_pairs(opt.metrics);
  cp.overwrite = opt.overwrite;
  if (!opt.metadata.empty()) {
    cp.metadata = parse_object_arg(opt.metadata, "--metadata");
  }
  for (auto& named : io::read_all_arrays(opt.params)) {
    cp.arrays.emplace(named.name, std::move(named.array));
  }
  const std::string path = ctx.backend().checkpoints().save_checkpoint(cp);
  // Retention runs after the save committed: a crash in between only leaves extra epochs.
  std::vector<backends::CheckpointInfo> removed;
  if (!policy.empty()) {
    removed = training::apply_retention(ctx.backend(), opt.model, policy).remove;
  }
  if (ctx.json()) {
    output::print_json({{"path", path}, {"deleted", paths_json(removed)}});
  } else {
    output::print_text(path + "\n");
    for (const auto& c : removed) {
      ctx.note(fmt::format("deleted {} (retention)", c.path));
    }
  }
}

void run_checkpoint_prune(const CheckpointPruneOptions& opt, Context& ctx) {
  backends::validate_model_name(opt.model);
  const auto policy = retention_of(opt.keep, opt.keep_best);
  if (policy.empty()) {
    throw UsageError("checkpoint prune: give --keep N and/or --keep-best METRIC:min|max");
  }
  training::RetentionPlan plan;
  if (opt.dry_run) {
    ctx.only_reads();
    auto listed = ctx.backend().checkpoints().list_checkpoints(opt.model);
    std::erase_if(listed, [&](const backends::CheckpointInfo& c) { return c.model != opt.model; });
    plan = training::plan_retention(listed, policy);
  } else {
    plan = training::apply_retention(ctx.backend(), opt.model, policy);
  }
  if (ctx.json()) {
    output::print_json({{"model", opt.model},
                        {"dry_run", opt.dry_run},
                        {"kept", paths_json(plan.keep)},
                        {"deleted", paths_json(plan.remove)}});
    return;
  }
  std::string text;
  for (const auto& c : plan.remove) {
    text += fmt::format("{} {}\n", opt.dry_run ? "would delete" : "deleted", c.path);
  }
  text += fmt::format("kept {} checkpoint(s) of \"{}\"\n", plan.keep.size(), opt.model);
  output::print_text(text);
}

void run_checkpoint_load(const CheckpointLoadOptions& opt, Context& ctx) {
  ctx.only_reads();
  backends::CheckpointRef::parse(opt.path);
  const auto cp = ctx.backend().checkpoints().load_checkpoint(opt.path);
  const std::string path = backends::checkpoint_path(cp.model, cp.epoch);
  auto arrays_json = nlohmann::json::array();
  std::vector<io::NamedArray> arrays;
  for (const auto& [name, array] : cp.arrays) {
    arrays_json.push_back(
        {{"name", name}, {"dtype", std::string(dtype_name(array.dtype()))}, {"shape", array.shape()}});
    // "parameters" goes first: an NPY target holds the first array in OUT.npy itself.
    auto at = name == "parameters" ? arrays.begin() : arrays.end();
    arrays.insert(at, io::NamedArray{name, array});
  }
  if (!opt.output.empty()) {
    io::write_arrays(opt.output, arrays, {}, {{"model", cp.model}, {"epoch", cp.epoch}, {"created_at", cp.created_at}});
  }
  if (ctx.json()) {
    nlohmann::json j = {{"path", path},          {"model", cp.model},       {"epoch", cp.epoch},
                        {"metrics", cp.metrics}, {"metadata", cp.metadata}, {"created_at", cp.created_at},
                        {"arrays", arrays_json}};
    j["output"] = opt.output.empty() ? nlohmann::json(nullptr) : nlohmann::json(opt.output);
    output::print_json(j);
    return;
  }
  std::string text = fmt::format("path: {}\nepoch: {}\nmetrics: {}\nmetadata: {}\ncreated_at: {}\n", path, cp.epoch,
                                 metrics_text(cp.metrics), cp.metadata.dump(), cp.created_at);
  for (const auto& a : arrays_json) {
    text += fmt::format("array: {} {} {}\n", a["name"].get<std::string>(), a["dtype"].get<std::string>(),
                        shape_to_string(a["shape"].get<Shape>()));
  }
  if (!opt.output.empty()) {
    text += fmt::format("written: {}\n", opt.output);
  }
  output::print_text(text);
}

void run_checkpoint_list(const CheckpointListOptions& opt, Context& ctx) {
  ctx.only_reads();
  const auto list = ctx.backend().checkpoints().list_checkpoints(opt.model);
  if (ctx.json()) {
    auto arr = nlohmann::json::array();
    for (const auto& c : list) {
      arr.push_back(checkpoint_info_json(c));
    }
    output::print_json({{"checkpoints", arr}});
    return;
  }
  // The metrics history: one column per metric name, one row per kept epoch.
  std::set<std::string> names;
  for (const auto& c : list) {
    for (const auto& [k, v] : c.metrics) {
      names.insert(k);
    }
  }
  std::vector<std::string> header{"path", "epoch", "latest"};
  std::vector<bool> numeric{false, true, false};
  for (const auto& n : names) {
    header.push_back(n);
    numeric.push_back(true);
  }
  header.insert(header.end(), {"bytes", "created_at"});
  numeric.insert(numeric.end(), {true, false});
  output::TextTable table(header, numeric);
  for (const auto& c : list) {
    std::vector<std::string> row{c.path, std::to_string(c.epoch), c.latest ? "*" : ""};
    for (const auto& n : names) {
      const auto it = c.metrics.find(n);
      row.push_back(it == c.metrics.end() ? "-" : output::format_number(it->second));
    }
    row.push_back(output::human_bytes(c.bytes));
    row.push_back(c.created_at);
    table.add_row(std::move(row));
  }
  output::print_text(table.render());
}

}  // namespace

void register_checkpoint(CLI::App& parent, Context& ctx) {
  auto* cmd = parent.add_subcommand("checkpoint", "Save, load and list model checkpoints");
  cmd->require_subcommand(1);

  auto save = std::make_shared<CheckpointSaveOptions>();
  auto* s = cmd->add_subcommand("save", "Save arrays, metrics and metadata as MODEL@EPOCH; prints the path");
  s->add_option("--model", save->model, "Model name")->required()->envname("VSTASH_MODEL");
  s->add_option("--epoch", save->epoch, "Epoch number")->required();
  s->add_option("--params", save->params, "FILE.npy (one array) or FILE.h5 (every numeric dataset)")->required();
  s->add_option("--metric", save->metrics, "NAME=NUMBER (repeatable)");
  s->add_option("--metadata", save->metadata, "Metadata JSON object or @FILE.json");
  s->add_flag("--overwrite", save->overwrite,
              "Replace MODEL@EPOCH if it exists (otherwise that is a conflict, exit 5)");
  s->add_option("--keep", save->keep, "After saving, keep only the N highest epochs (plus --keep-best and latest)")
      ->envname("VSTASH_KEEP");
  s->add_option("--keep-best", save->keep_best, "After saving, also keep the best epoch by METRIC:min or METRIC:max")
      ->envname("VSTASH_KEEP_BEST");
  s->callback([save, &ctx] { run_checkpoint_save(*save, ctx); });

  auto load = std::make_shared<CheckpointLoadOptions>();
  auto* l = cmd->add_subcommand("load", "Print a checkpoint and write its arrays to NPY/HDF5");
  l->add_option("PATH", load->path, "MODEL@EPOCH or MODEL@latest")->required();
  l->add_option("-o,--output", load->output, "OUT.npy (+ OUT.<name>.npy) or OUT.h5");
  l->callback([load, &ctx] { run_checkpoint_load(*load, ctx); });

  auto list = std::make_shared<CheckpointListOptions>();
  auto* ls = cmd->add_subcommand("list", "List checkpoints");
  ls->add_option("--model", list->model, "Only this model")->envname("VSTASH_MODEL");
  ls->callback([list, &ctx] { run_checkpoint_list(*list, ctx); });

  auto prune = std::make_shared<CheckpointPruneOptions>();
  auto* p = cmd->add_subcommand("prune", "Apply retention to a model's checkpoints (the latest is always kept)");
  p->add_option("--model", prune->model, "Model name")->required()->envname("VSTASH_MODEL");
  p->add_option("--keep", prune->keep, "Keep the N highest epochs")->envname("VSTASH_KEEP");
  p->add_option("--keep-best", prune->keep_best, "Also keep the best epoch by METRIC:min or METRIC:max")
      ->envname("VSTASH_KEEP_BEST");
  p->add_flag("--dry-run", prune->dry_run, "Print what would be deleted and delete nothing");
  p->callback([prune, &ctx] { run_checkpoint_prune(*prune, ctx); });
}

}  // namespace vstash::commands
