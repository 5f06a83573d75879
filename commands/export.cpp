// SPDX-License-Identifier: MIT
// `vstash export`: a whole dataset back to NPY/HDF5 (data, labels, ids) plus metadata JSONL.
#include <fmt/format.h>
#include <memory>

#include "commands.hpp"
#include "common.hpp"
#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/io/atomicfile.hpp"
#include "src/output.hpp"
#include "src/progress.hpp"

namespace vstash::commands {

struct ExportOptions {
  std::string output;
  int64_t block_rows = 10000;
};

namespace {

// out.npy / out.h5 / out.h5:/x -> out.metadata.jsonl
std::string metadata_path(const std::string& output) {
  std::string file = io::ArrayLocation::parse(output).file;
  const auto dot = file.rfind('.');
  const auto slash = file.rfind('/');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
    file.resize(dot);
  }
  return file + ".metadata.jsonl";
}

void run_export(const ExportOptions& opt, Context& ctx) {
  ctx.only_reads();
  check_range("--block-rows", opt.block_rows, 1, int64_t{1} << 24);
  const std::string dataset = ctx.dataset();
  auto& backend = ctx.backend();
  const auto info = require_dataset(backend, dataset);
  // Rows are read from the store in blocks; the writers need whole arrays, so they are
  // gathered here (the output file is as large as this in any case).
  backends::RowBatch all;
  bool any_metadata = false;
  ProgressBar bar("export", info.rows, ctx.show_progress());
  for (int64_t offset = 0;; offset += opt.block_rows) {
    check_interrupted();
    auto block = backend.read_rows(dataset, offset, opt.block_rows);
    const auto got = static_cast<int64_t>(block.size());  // before `block` may be moved from
    if (offset == 0) {
      all = std::move(block);
    } else {
      all.data.append_rows(block.data);
      if (all.labels && block.labels) {
        all.labels->append_rows(*block.labels);
      }
      all.ids.insert(all.ids.end(), block.ids.begin(), block.ids.end());
      all.metadata.insert(all.metadata.end(), block.metadata.begin(), block.metadata.end());
    }
    bar.update(static_cast<int64_t>(all.size()));
    if (got < opt.block_rows) {
      break;
    }
  }
  bar.finish();
  if (all.size() == 0) {
    // An empty dataset exports as empty arrays of its spec: (0, row shape...), so that an
    // empty file round-trips through ingest and export.
    const auto& spec = info.spec;
    Shape shape{0};
    shape.insert(shape.end(), spec.row_shape.begin(), spec.row_shape.end());
    all.data = Array(spec.dtype, shape);
    if (spec.label_dtype) {
      Shape label_shape{0};
      label_shape.insert(label_shape.end(), spec.label_shape.begin(), spec.label_shape.end());
      all.labels = Array(*spec.label_dtype, label_shape);
    }
  }
  std::vector<io::NamedArray> arrays{{"data", all.data}};
  if (all.labels) {
    arrays.push_back({"labels", *all.labels});
  }
  std::string meta_file;
  for (const auto& m : all.metadata) {
    any_metadata = any_metadata || !m.is_null();
  }
  std::optional<io::AtomicFile> meta;
  if (any_metadata) {
    meta_file = metadata_path(opt.output);
    meta.emplace(meta_file);
    for (const auto& m : all.metadata) {
      const std::string line = (m.is_null() ? nlohmann::json::object() : m).dump() + "\n";
      meta->write(line.data(), line.size());
    }
  }
  io::write_arrays(opt.output, arrays, all.ids);
  if (meta) {
    meta->commit();
  }
  nlohmann::json result = {{"dataset", dataset}, {"output", opt.output}, {"rows", all.size()},
                           {"labels", all.labels.has_value()}};
  result["metadata_file"] = meta_file.empty() ? nlohmann::json(nullptr) : nlohmann::json(meta_file);
  if (ctx.json()) {
    output::print_json(result);
  } else {
    output::print_text(fmt::format("exported {} rows of \"{}\" to {}{}\n", all.size(), dataset, opt.output,
                                   meta_file.empty() ? "" : " and " + meta_file));
  }
}

}  // namespace

void register_export(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<ExportOptions>();
  auto* sub = parent.add_subcommand("export", "Write a whole dataset to NPY or HDF5 (+ metadata JSONL)");
  sub->add_option("-o,--output", opt->output, "OUT.npy (+ OUT.labels.npy, OUT.ids.npy) or OUT.h5")->required();
  sub->add_option("--block-rows", opt->block_rows, "Rows read from the store per request (default 10000)")
      ->envname("VSTASH_BLOCK_ROWS");
  sub->callback([opt, &ctx] { run_export(*opt, ctx); });
}

}  // namespace vstash::commands
