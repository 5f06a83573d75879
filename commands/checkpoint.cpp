// SPDX-License-Identifier: MIT
// `vstash checkpoint save|load|list`: model state (named arrays, metrics, metadata) by
// MODEL@EPOCH; MODEL@latest resolves to the highest epoch.
#include <fmt/format.h>
#include <memory>

#include "commands.hpp"
#include "common.hpp"
#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct CheckpointSaveOptions {
  std::string model;
  int64_t epoch = -1;
  std::string params;
  std::vector<std::string> metrics;
  std::string metadata;
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

void run_checkpoint_save(const CheckpointSaveOptions& opt, Context& ctx) {
  backends::validate_model_name(opt.model);
  if (opt.epoch < 0) {
    throw UsageError(fmt::format("--epoch: must be non-negative, got {}", opt.epoch));
  }
  backends::Checkpoint cp;
  cp.model = opt.model;
  cp.epoch = opt.epoch;
  cp.metrics = parse_metric_pairs(opt.metrics);
  if (!opt.metadata.empty()) {
    cp.metadata = parse_object_arg(opt.metadata, "--metadata");
  }
  for (auto& named : io::read_all_arrays(opt.params)) {
    cp.arrays.emplace(named.name, std::move(named.array));
  }
  const std::string path = ctx.backend().save_checkpoint(cp);
  if (ctx.json()) {
    output::print_json({{"path", path}});
  } else {
    output::print_text(path + "\n");
  }
}

void run_checkpoint_load(const CheckpointLoadOptions& opt, Context& ctx) {
  backends::CheckpointRef::parse(opt.path);
  const auto cp = ctx.backend().load_checkpoint(opt.path);
  const std::string path = backends::checkpoint_path(cp.model, cp.epoch);
  auto arrays_json = nlohmann::json::array();
  std::vector<io::NamedArray> arrays;
  for (const auto& [name, array] : cp.arrays) {
    arrays_json.push_back({{"name", name}, {"dtype", std::string(dtype_name(array.dtype()))}, {"shape", array.shape()}});
    // "parameters" goes first: an NPY target holds the first array in OUT.npy itself.
    auto at = name == "parameters" ? arrays.begin() : arrays.end();
    arrays.insert(at, io::NamedArray{name, array});
  }
  if (!opt.output.empty()) {
    io::write_arrays(opt.output, arrays, {}, {{"model", cp.model}, {"epoch", cp.epoch}, {"created_at", cp.created_at}});
  }
  if (ctx.json()) {
    nlohmann::json j = {{"path", path},       {"model", cp.model},       {"epoch", cp.epoch},
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
  const auto list = ctx.backend().list_checkpoints(opt.model);
  if (ctx.json()) {
    auto arr = nlohmann::json::array();
    for (const auto& c : list) {
      arr.push_back(checkpoint_info_json(c));
    }
    output::print_json({{"checkpoints", arr}});
    return;
  }
  output::TextTable table({"path", "epoch", "latest", "bytes", "created_at", "metrics"},
                          {false, true, false, true, false, false});
  for (const auto& c : list) {
    table.add_row({c.path, std::to_string(c.epoch), c.latest ? "*" : "", output::human_bytes(c.bytes), c.created_at,
                   metrics_text(c.metrics)});
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
}

}  // namespace vstash::commands
