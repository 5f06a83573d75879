// SPDX-License-Identifier: MIT
// `vstash batch`: one training batch (data, labels, ids) from a dataset into an NPY/HDF5 file.
#include <fmt/format.h>
#include <memory>

#include "commands.hpp"
#include "common.hpp"
#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/output.hpp"
#include "src/training/dataloader.hpp"

namespace vstash::commands {

struct BatchOptions {
  int64_t size = 32;
  int64_t offset = 0;
  bool shuffle = false;
  uint64_t seed = 0;
  std::string output;
  // Distributed loading (issue 7) adds its options here: epoch, rank, world_size,
  // drop_last, workers, stream; register them in register_batch below.
};

namespace {

void run_batch(const BatchOptions& opt, Context& ctx) {
  if (opt.size <= 0 || opt.offset < 0) {
    throw UsageError("batch: --size must be positive and --offset non-negative");
  }
  const std::string dataset = ctx.dataset();
  auto& backend = ctx.backend();
  const auto info = require_dataset(backend, dataset);
  // The document's load_training_batch: shuffled batches walk one seeded permutation
  // (sharding.hpp's epoch_order), so consecutive offsets never repeat a row.
  const auto rows = training::load_training_batch(backend, dataset, opt.size, opt.shuffle, opt.offset, opt.seed);
  if (rows.size() == 0) {
    throw NotFoundError(fmt::format("dataset \"{}\": no rows at offset {} (it has {})", dataset, opt.offset, info.rows));
  }
  std::vector<io::NamedArray> arrays{{"data", rows.data}};
  if (rows.labels) {
    arrays.push_back({"labels", *rows.labels});
  }
  io::write_arrays(opt.output, arrays, rows.ids);
  const nlohmann::json result = {{"dataset", dataset},       {"output", opt.output},
                                 {"rows", rows.size()},      {"offset", opt.offset},
                                 {"shuffle", opt.shuffle},   {"seed", opt.seed},
                                 {"labels", rows.labels.has_value()}};
  if (ctx.json()) {
    output::print_json(result);
  } else {
    output::print_text(fmt::format("wrote {} rows of \"{}\" (offset {}{}) to {}\n", rows.size(), dataset, opt.offset,
                                   opt.shuffle ? fmt::format(", shuffled with seed {}", opt.seed) : "", opt.output));
  }
}

}  // namespace

void register_batch(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<BatchOptions>();
  auto* sub = parent.add_subcommand("batch", "Write one training batch (data, labels, ids) to NPY or HDF5");
  sub->add_option("--size", opt->size, "Rows in the batch")->required()->envname("VSTASH_BATCH_SIZE");
  sub->add_option("--offset", opt->offset, "Position of the first row (in shuffled order with --shuffle)")
      ->envname("VSTASH_OFFSET");
  sub->add_flag("--shuffle", opt->shuffle, "Take the batch from a seeded permutation of the dataset")
      ->envname("VSTASH_SHUFFLE");
  sub->add_option("--seed", opt->seed, "Permutation seed (default 0)")->envname("VSTASH_SEED");
  sub->add_option("-o,--output", opt->output, "OUT.npy (+ OUT.labels.npy, OUT.ids.npy) or OUT.h5 (/data /labels /ids)")
      ->required();
  sub->callback([opt, &ctx] { run_batch(*opt, ctx); });
}

}  // namespace vstash::commands
