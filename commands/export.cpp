// SPDX-License-Identifier: MIT
// `vstash export`: a whole dataset back to NPY/HDF5 (data, labels, ids) plus metadata JSONL.
#include <fmt/format.h>
#include <filesystem>
#include <memory>
#include <optional>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/io/atomicfile.hpp"
#include "src/io/hdf5.hpp"
#include "src/io/npy.hpp"
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

// The output files of an export, written block by block (src/io block writers): NPY data
// (+ .labels.npy, .ids.npy siblings) or HDF5 /data, /labels, /ids in the location's group.
class ExportFiles {
 public:
  ExportFiles(const std::string& output, const backends::DatasetSpec& spec, int64_t rows) {
    const auto loc = io::ArrayLocation::parse(output);
    if (loc.is_hdf5) {
      const std::string group = loc.dataset == "/" ? "" : loc.dataset;
      std::vector<io::Hdf5BlockDataset> sets{{group + "/data", spec.dtype, spec.row_shape, false}};
      if (spec.label_dtype) {
        sets.push_back({group + "/labels", *spec.label_dtype, spec.label_shape, false});
      }
      if (rows > 0) {
        sets.push_back({group + "/ids", DType::f32, {}, true});
      }
      m_hdf5.emplace(loc.file, sets, rows, !loc.dataset.empty());
      return;
    }
    // Siblings as io::write_arrays names them: out.npy -> out.labels.npy, out.ids.npy.
    const std::filesystem::path path(loc.file);
    auto sibling = [&](const char* name) {
      return (path.parent_path() / fmt::format("{}.{}.npy", path.stem().string(), name)).string();
    };
    m_data.emplace(loc.file, spec.dtype, spec.row_shape, rows);
    if (spec.label_dtype) {
      m_labels.emplace(sibling("labels"), *spec.label_dtype, spec.label_shape, rows);
    }
    if (rows > 0) {
      m_ids.emplace(sibling("ids"));
    }
  }

  void append(const backends::RowBatch& block) {
    if (m_hdf5) {
      m_hdf5->append(0, block.data);
      if (block.labels) {
        m_hdf5->append(1, *block.labels);
      }
      m_hdf5->append_strings(block.labels ? 2 : 1, block.ids);
      return;
    }
    m_data->append(block.data);
    if (m_labels && block.labels) {
      m_labels->append(*block.labels);
    }
    if (m_ids) {
      m_ids->append(block.ids);
    } else if (!block.ids.empty()) {
      throw RetryableError("the dataset changed while it was exported (it was empty when it began); run it again");
    }
  }

  // Every file complete in its temp before the first rename, so a failure leaves none.
  void finish() {
    if (m_hdf5) {
      m_hdf5->finish();
      return;
    }
    m_data->finish();
    if (m_labels) {
      m_labels->finish();
      if (m_labels->rows_written() != m_data->rows_written()) {
        throw RetryableError("the dataset changed while it was exported (labels and rows differ); run it again");
      }
    }
    if (m_ids) {
      m_ids->finish();
    }
  }
  void commit() {
    if (m_hdf5) {
      m_hdf5->commit();
      return;
    }
    m_data->commit();
    if (m_labels) {
      m_labels->commit();
    }
    if (m_ids) {
      m_ids->commit();
    }
  }

 private:
  std::optional<io::Hdf5BlockWriter> m_hdf5;
  std::optional<io::NpyBlockWriter> m_data;
  std::optional<io::NpyBlockWriter> m_labels;
  std::optional<io::NpyStringsBlockWriter> m_ids;
};

void run_export(const ExportOptions& opt, Context& ctx) {
  ctx.only_reads();
  check_range("--block-rows", opt.block_rows, 1, int64_t{1} << 24);
  const std::string dataset = ctx.dataset();
  auto& backend = ctx.backend();
  const auto info = require_dataset(backend, dataset);
  // Block by block: memory holds one block whatever the dataset's size. The metadata file
  // is kept only when some row has metadata.
  ExportFiles files(opt.output, info.spec, info.rows);
  const std::string meta_file = metadata_path(opt.output);
  io::AtomicFile meta(meta_file);
  bool any_metadata = false;
  int64_t rows = 0;
  ProgressBar bar("export", info.rows, ctx.show_progress());
  for (int64_t offset = 0;; offset += opt.block_rows) {
    check_interrupted();
    const auto block = backend.read_rows(dataset, offset, opt.block_rows);
    const auto got = static_cast<int64_t>(block.size());
    files.append(block);
    std::string lines;
    for (const auto& m : block.metadata) {
      any_metadata = any_metadata || !m.is_null();
      lines += (m.is_null() ? nlohmann::json::object() : m).dump();
      lines += '\n';
    }
    for (size_t i = block.metadata.size(); i < block.size(); ++i) {
      lines += "{}\n";  // a store that returns no metadata for the block
    }
    meta.write(lines.data(), lines.size());
    rows += got;
    bar.update(rows);
    if (got < opt.block_rows) {
      break;
    }
  }
  bar.finish();
  files.finish();
  files.commit();
  if (any_metadata) {
    meta.commit();
  }
  nlohmann::json result = {
      {"dataset", dataset}, {"output", opt.output}, {"rows", rows}, {"labels", info.spec.label_dtype.has_value()}};
  result["metadata_file"] = any_metadata ? nlohmann::json(meta_file) : nlohmann::json(nullptr);
  if (ctx.json()) {
    output::print_json(result);
  } else {
    output::print_text(fmt::format("exported {} rows of \"{}\" to {}{}\n", rows, dataset, opt.output,
                                   any_metadata ? " and " + meta_file : ""));
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
