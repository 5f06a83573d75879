// SPDX-License-Identifier: MIT
// `vstash update`: replace one row's vector and/or merge keys into its metadata.
#include <fmt/format.h>
#include <memory>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct UpdateOptions {
  std::string id;
  std::string vector;
  std::string vector_file;
  std::string metadata;
};

namespace {

void run_update(const UpdateOptions& opt, Context& ctx) {
  if (!opt.vector.empty() && !opt.vector_file.empty()) {
    throw UsageError("update: give at most one of --vector or --vector-file");
  }
  if (opt.vector.empty() && opt.vector_file.empty() && opt.metadata.empty()) {
    throw UsageError("update: nothing to do: pass --vector, --vector-file or --metadata");
  }
  std::optional<nlohmann::json> metadata;
  if (!opt.metadata.empty()) {
    metadata = parse_object_arg(opt.metadata, "--metadata");
  }
  const std::string dataset = ctx.dataset();
  auto& backend = ctx.backend();
  const auto info = require_dataset(backend, dataset);
  std::optional<Array> sample;
  if (!opt.vector.empty() || !opt.vector_file.empty()) {
    const auto values =
        opt.vector.empty() ? read_vector_file(opt.vector_file) : parse_vector_arg(opt.vector, "--vector");
    check_dimension(info.spec, values.size(), opt.vector.empty() ? opt.vector_file : "--vector");
    // One row of the dataset's row shape, as Backend::update_row takes it (not a 1-row batch).
    sample = make_array(info.spec.dtype, info.spec.row_shape, values);
  }
  backend.update_row(dataset, opt.id, sample, metadata);
  if (ctx.json()) {
    output::print_json(
        {{"dataset", dataset}, {"id", opt.id}, {"vector", sample.has_value()}, {"metadata", metadata.has_value()}});
  } else {
    output::print_text(fmt::format("updated \"{}\" in \"{}\"\n", opt.id, dataset));
  }
}

}  // namespace

void register_update(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<UpdateOptions>();
  auto* sub = parent.add_subcommand("update", "Replace a row's vector and/or merge its metadata");
  sub->add_option("--id", opt->id, "Row id")->required();
  sub->add_option("--vector", opt->vector, "New vector as JSON or @FILE.json");
  sub->add_option("--vector-file", opt->vector_file, "New vector from an NPY/HDF5 file");
  sub->add_option("--metadata", opt->metadata, "Keys to merge (null deletes a key), JSON or @FILE.json");
  sub->callback([opt, &ctx] { run_update(*opt, ctx); });
}

}  // namespace vstash::commands
