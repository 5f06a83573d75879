// SPDX-License-Identifier: MIT
// `vstash batch`: training batches (data, labels, ids) from a dataset. One batch into an
// NPY/HDF5 file, or with --stream a whole epoch (or one rank's shard of it) as a sequence of
// batch files or as an NPY stream on stdout, prefetched by --workers threads.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <array>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <memory>

#include "backends/registry.hpp"
#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/io/npy.hpp"
#include "src/io/npyheader.hpp"
#include "src/output.hpp"
#include "workflows/training/dataloader.hpp"
#include "workflows/training/selection.hpp"
#include "workflows/training/sharding.hpp"

namespace vstash::commands {

// --workers not given: 2, or none when the store gathers rows from memory
// (training::LoaderOptions::gather_inline); any number a user can type is checked as given.
constexpr int k_auto_workers = std::numeric_limits<int>::min();

struct BatchOptions {
  int64_t size = 0;  // required unless --order global gets --global-batch-size
  int64_t offset = 0;
  bool shuffle = false;
  uint64_t seed = 0;
  std::string output;
  int64_t epoch = 0;
  int64_t rank = 0;
  int64_t world_size = 1;
  std::string remainder = "uneven";
  bool drop_last = false;
  bool stream = false;
  int workers = k_auto_workers;
  int64_t start_batch = 0;
  std::string filter;
  std::string split;
  std::string take;
  bool with_ids = false;
  std::string order = "strided";
  int64_t global_batch_size = 0;
};

namespace {

constexpr const char* k_placeholder = "{}";
// Limits documented in man/vstash.1: each worker is a thread with its own connection.
constexpr int64_t k_max_workers = 64;
constexpr int64_t k_max_batch_rows = int64_t{1} << 24;

training::ShardSpec shard_of(const BatchOptions& opt) {
  training::ShardSpec shard{opt.rank, opt.world_size, training::parse_remainder_policy(opt.remainder)};
  training::validate_shard(shard);
  return shard;
}

// The epoch's plan: the order over the selected rows (--filter, --split/--take), then strided
// shards of --size rows per batch, or global batches of --global-batch-size rows.
training::PlanSpec plan_spec_of(const BatchOptions& opt) {
  training::PlanSpec spec;
  spec.shuffle = opt.shuffle;
  spec.seed = opt.seed;
  spec.epoch = opt.epoch;
  spec.shard = shard_of(opt);
  spec.kind = training::parse_order_kind(opt.order);
  spec.batch_size = spec.kind == training::OrderKind::global ? opt.global_batch_size : opt.size;
  spec.drop_last = opt.drop_last;
  return spec;
}

std::shared_ptr<const std::vector<int64_t>> selection_of(const BatchOptions& opt, backends::Backend& backend,
                                                         const std::string& dataset,
                                                         const backends::DatasetInfo& info) {
  std::optional<Filter> filter;
  if (!opt.filter.empty()) {
    filter = parse_filter_arg(opt.filter);
  }
  std::optional<training::SplitSpec> split;
  if (!opt.split.empty()) {
    split = training::parse_split(opt.split, opt.take);
  }
  auto selected = training::select_positions(backend, dataset, info, filter ? &*filter : nullptr,
                                             split ? &*split : nullptr, opt.seed);
  return selected ? std::make_shared<const std::vector<int64_t>>(std::move(*selected)) : nullptr;
}

nlohmann::json common_json(const BatchOptions& opt, const std::string& dataset) {
  nlohmann::json j = {{"dataset", dataset},           {"output", opt.output},
                      {"shuffle", opt.shuffle},       {"seed", opt.seed},
                      {"epoch", opt.epoch},           {"rank", opt.rank},
                      {"world_size", opt.world_size}, {"remainder", opt.remainder},
                      {"drop_last", opt.drop_last},   {"order", opt.order}};
  if (opt.order == "global") {
    j["global_batch_size"] = opt.global_batch_size;
  }
  if (!opt.filter.empty()) {
    j["filter"] = opt.filter;
  }
  if (!opt.split.empty()) {
    j["split"] = opt.split;
    j["take"] = opt.take;
  }
  return j;
}

void write_batch_file(const std::string& target, const backends::RowBatch& rows) {
  std::vector<io::NamedArray> arrays{{"data", rows.data}};
  if (rows.labels) {
    arrays.push_back({"labels", *rows.labels});
  }
  io::write_arrays(target, arrays, rows.ids);
}

// One batch: rows [offset, offset + size) of the rank's shard of the epoch order.
// The rows of one batch, planned on the dataset's row count. A writer that deletes rows between
// the count and the read makes a planned position fall off the end: the batch is then planned
// again on the new count (a few times), so a reader racing a writer sees one consistent
// snapshot's batch rather than "position out of range".
backends::RowBatch read_single_batch(const BatchOptions& opt, backends::Backend& backend, const std::string& dataset,
                                     int64_t& available, bool& selected) {
  constexpr int k_attempts = 5;
  for (int attempt = 1;; ++attempt) {
    const auto info = require_dataset(backend, dataset);
    const auto selection = selection_of(opt, backend, dataset, info);
    selected = selection != nullptr;
    // Rows [offset, offset + size) of the rank's sequence: shuffled batches walk one seeded
    // permutation (sharding.hpp's EpochOrder), evaluated at these positions only, so a batch
    // costs O(size) and consecutive offsets never repeat a row.
    const training::EpochPlan plan(info.rows, selection ? std::optional(*selection) : std::nullopt, plan_spec_of(opt));
    available = plan.rows();
    try {
      if (plan.contiguous()) {
        return backend.read_rows(dataset, opt.offset, opt.size);
      }
      return opt.offset < available ? backend.read_positions(dataset, plan.entries(opt.offset, opt.size))
                                    : backends::RowBatch{};
    } catch (const UsageError&) {
      const auto now = backend.dataset_info(dataset);
      if (attempt == k_attempts || !now || now->rows == info.rows) {
        throw;  // not a shrinking dataset: the error stands
      }
    }
  }
}

void run_single(const BatchOptions& opt, Context& ctx) {
  if (opt.output == "-") {
    throw UsageError("batch: -o - (stdout) needs --stream");
  }
  const std::string dataset = ctx.dataset();
  int64_t available = 0;
  bool selected = false;
  const backends::RowBatch rows = read_single_batch(opt, ctx.backend(), dataset, available, selected);
  if (rows.size() == 0) {
    throw NotFoundError(fmt::format("dataset \"{}\": no rows at offset {} (the {} has {})", dataset, opt.offset,
                                    opt.world_size == 1 ? (selected ? "selection" : "dataset") : "shard", available));
  }
  write_batch_file(opt.output, rows);
  nlohmann::json result = common_json(opt, dataset);
  result["rows"] = rows.size();
  result["offset"] = opt.offset;
  result["labels"] = rows.labels.has_value();
  if (ctx.json()) {
    output::print_json(result);
  } else {
    output::print_text(
        fmt::format("wrote {} rows of \"{}\" (offset {}{}{}) to {}\n", rows.size(), dataset, opt.offset,
                    opt.shuffle ? fmt::format(", shuffled with seed {} epoch {}", opt.seed, opt.epoch) : "",
                    opt.world_size > 1 ? fmt::format(", rank {} of {}", opt.rank, opt.world_size) : "", opt.output));
  }
}

// "batches/b{}.npy" -> "batches/b000042.npy".
std::string batch_file_name(const std::string& pattern, int64_t index) {
  const auto at = pattern.find(k_placeholder);
  return pattern.substr(0, at) + fmt::format("{:06d}", index) + pattern.substr(at + 2);
}

// -o of --stream: "-" (not a terminal) or a file pattern with the batch number's placeholder.
void check_stream_output(const BatchOptions& opt) {
  const bool to_stdout = opt.output == "-";
  if (!to_stdout && opt.output.find(k_placeholder) == std::string::npos) {
    throw UsageError(
        fmt::format("batch --stream: -o \"{}\" must be - (an NPY stream on stdout) or a file pattern "
                    "with {{}} for the batch number, e.g. batches/b{{}}.npy",
                    opt.output));
  }
  if (to_stdout && isatty(STDOUT_FILENO)) {
    throw UsageError("batch --stream -o -: stdout is a terminal; pipe the NPY stream into a program or a file");
  }
  if (opt.workers != k_auto_workers) {
    check_range("--workers", opt.workers, 0, k_max_workers);
  }
}

// The data loader's options from the flags: order, selection, shard, workers and their connections.
training::LoaderOptions stream_loader_options(const BatchOptions& opt, const std::string& dataset, Context& ctx) {
  const bool to_stdout = opt.output == "-";
  auto& backend = ctx.backend();
  const auto spec = plan_spec_of(opt);
  const auto& shard = spec.shard;
  training::LoaderOptions lo;
  lo.order = spec.kind;
  lo.batch_size = spec.batch_size;
  lo.selection = selection_of(opt, backend, dataset, require_dataset(backend, dataset));
  lo.shuffle = opt.shuffle;
  lo.num_workers = opt.workers == k_auto_workers ? 2 : opt.workers;
  lo.gather_inline = opt.workers == k_auto_workers;
  lo.seed = opt.seed;
  lo.epoch = opt.epoch;
  lo.drop_last = opt.drop_last;
  lo.rank = shard.rank;
  lo.world_size = shard.world_size;
  lo.pad_shards = shard.remainder;
  lo.start_position = opt.start_batch;
  lo.samples_only = to_stdout && !opt.with_ids;  // batch files and --with-ids keep the ids
  // Each worker gets its own connection so loads run in parallel, not in turns.
  const Profile& profile = ctx.profile();
  const ProfileFile& file = ctx.profile_file();  // so a `cache:` profile is found by every worker
  lo.connect = [&profile, &file] { return backends::create_backend(profile, &file, backends::Access::read_only); };
  return lo;
}

// A pipe on stdout holds 1 MiB instead of Linux's default 64 KiB (best effort, never smaller):
// a batch of 256 x 128 float32 is 128 KiB, so with the default every batch took several
// wake-ups of writer and reader; a 1M-row epoch through `| cat` went about 2x faster.
void widen_stdout_pipe() {
  constexpr int k_pipe_bytes = 1 << 20;
  struct stat st {};
  if (::fstat(STDOUT_FILENO, &st) != 0 || !S_ISFIFO(st.st_mode)) {
    return;
  }
  const int now = ::fcntl(STDOUT_FILENO, F_GETPIPE_SZ);
  if (now >= 0 && now < k_pipe_bytes) {
    (void)::fcntl(STDOUT_FILENO, F_SETPIPE_SZ, k_pipe_bytes);  // refused above pipe-max-size: keep it
  }
}

// The NPY documents of streamed batches on stdout: data then labels in one writev per batch,
// each header made once per shape (every batch but the last has the same shape).
class NpyStreamOut {
 public:
  void write(const backends::RowBatch& batch) {
    if (!m_widened) {
      widen_stdout_pipe();
      m_widened = true;
    }
    std::array<iovec, 4> iov{};
    size_t n = 0;
    add(m_data, batch.data, iov, n);
    if (batch.labels) {
      add(m_labels, *batch.labels, iov, n);
    }
    output::flush_stdout();  // whatever stdio holds goes first
    iovec* next = iov.data();
    while (n > 0) {
      const ssize_t w = ::writev(STDOUT_FILENO, next, static_cast<int>(n));
      if (w < 0) {
        if (errno == EINTR) {
          continue;
        }
        output::stdout_write_failed(errno);
      }
      auto left = static_cast<size_t>(w);  // a partial write: go on after the bytes written
      for (; n > 0 && left >= next->iov_len; ++next, --n) {
        left -= next->iov_len;
      }
      if (n > 0) {
        next->iov_base = static_cast<char*>(next->iov_base) + left;
        next->iov_len -= left;
      }
    }
  }

 private:
  struct Header {
    DType dtype = DType::f32;
    Shape shape;
    std::string text;
  };

  static void add(Header& h, const Array& a, std::array<iovec, 4>& iov, size_t& n) {
    if (h.text.empty() || h.dtype != a.dtype() || h.shape != a.shape()) {
      h.dtype = a.dtype();
      h.shape = a.shape();
      h.text = io::make_npy_header(io::npy_descr_for(a.dtype()), a.shape());
    }
    iov[n++] = {h.text.data(), h.text.size()};
    iov[n++] = {const_cast<std::byte*>(a.data()), a.nbytes()};
  }

  Header m_data;
  Header m_labels;
  bool m_widened = false;
};

// A whole epoch (or shard) through the prefetching data loader.
void run_stream(const BatchOptions& opt, Context& ctx) {
  check_stream_output(opt);
  const bool to_stdout = opt.output == "-";
  const std::string dataset = ctx.dataset();
  auto& backend = ctx.backend();
  auto loader = training::create_data_loader(backend, dataset, stream_loader_options(opt, dataset, ctx));

  int64_t rows = 0;
  int64_t batches = 0;
  bool labels = false;
  NpyStreamOut out;
  while (auto batch = loader->next()) {
    check_interrupted();
    const int64_t index = loader->position() - 1;
    if (to_stdout) {
      // Each batch is one NPY document for the data, then one for the labels if the dataset
      // has them: read them back with numpy.lib.format.read_array(stream) in a loop.
      out.write(*batch);
      if (opt.with_ids) {
        io::write_npy_strings_stream(stdout, batch->ids);
        output::flush_stdout();
      }
    } else {
      write_batch_file(batch_file_name(opt.output, index), *batch);
    }
    labels = batch->labels.has_value();
    rows += static_cast<int64_t>(batch->size());
    ++batches;
    loader->recycle(std::move(*batch));
  }
  nlohmann::json result = common_json(opt, dataset);
  result["stream"] = true;
  result["workers"] = loader->options().num_workers;
  result["batch_size"] = opt.size;
  result["start_batch"] = opt.start_batch;
  result["batches"] = batches;
  result["rows"] = rows;
  result["shard_rows"] = loader->shard_rows();
  result["labels"] = labels;
  result["with_ids"] = opt.with_ids;
  const std::string text =
      fmt::format("wrote {} batches ({} rows) of \"{}\" epoch {}{} to {}", batches, rows, dataset, opt.epoch,
                  opt.world_size > 1 ? fmt::format(" rank {} of {}", opt.rank, opt.world_size) : "",
                  to_stdout ? "stdout" : opt.output);
  if (to_stdout) {
    // stdout carries the arrays: the summary goes to stderr.
    ctx.note(ctx.json() ? result.dump() : text);
  } else if (ctx.json()) {
    output::print_json(result);
  } else {
    output::print_text(text + "\n");
  }
}

void check_flags(const BatchOptions& opt) {
  const bool global = training::parse_order_kind(opt.order) == training::OrderKind::global;
  if (opt.global_batch_size != 0 && !global) {
    throw UsageError("batch: --global-batch-size needs --order global");
  }
  if (global) {
    if (opt.global_batch_size == 0 && opt.size == 0) {
      throw UsageError("batch --order global: give --global-batch-size (the same for every world size)");
    }
    if (opt.global_batch_size != 0 && opt.size != 0 && opt.size * opt.world_size != opt.global_batch_size) {
      throw UsageError(
          fmt::format("batch: --size {} x --world-size {} is not --global-batch-size {}; give one of "
                      "--size and --global-batch-size",
                      opt.size, opt.world_size, opt.global_batch_size));
    }
  } else if (opt.size == 0) {
    throw UsageError("batch: --size is required");
  }
  if (opt.split.empty() != opt.take.empty()) {
    throw UsageError(opt.split.empty() ? "batch: --take names a part of --split, which is missing"
                                       : "batch: --split needs --take (the part to read, e.g. --take train)");
  }
  if (opt.with_ids && !opt.stream) {
    throw UsageError("batch: --with-ids is for --stream (a batch file always carries its ids)");
  }
}

void run_batch(BatchOptions opt, Context& ctx) {
  ctx.only_reads();
  if (opt.size < 0 || opt.offset < 0) {
    throw UsageError("batch: --size must be positive and --offset non-negative");
  }
  check_flags(opt);
  if (opt.order == "global" && opt.global_batch_size == 0) {
    opt.global_batch_size = opt.size * opt.world_size;
  }
  check_range("--size", opt.order == "global" ? opt.global_batch_size : opt.size, 1, k_max_batch_rows);
  if (opt.order == "global" && opt.size == 0) {
    opt.size = opt.global_batch_size;  // an upper bound of a rank's batch, for the checks below
  }
  if (opt.epoch < 0 || opt.start_batch < 0) {
    throw UsageError("batch: --epoch and --start-batch must not be negative");
  }
  if (opt.stream) {
    if (opt.offset != 0) {
      throw UsageError("batch: --offset selects one batch; with --stream use --start-batch");
    }
    run_stream(opt, ctx);
  } else {
    if (opt.drop_last || opt.start_batch != 0) {
      throw UsageError("batch: --drop-last and --start-batch need --stream");
    }
    run_single(opt, ctx);
  }
}

}  // namespace

void register_batch(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<BatchOptions>();
  auto* sub = parent.add_subcommand(
      "batch", "Write training batches (data, labels, ids): one batch, or a whole epoch/shard with --stream");
  sub->add_option("--size", opt->size, "Rows in a batch (with --order global: each rank's share, optional)")
      ->envname("VSTASH_BATCH_SIZE");
  sub->add_option("--offset", opt->offset, "Position of the batch's first row in the (shard's) epoch order")
      ->envname("VSTASH_OFFSET");
  sub->add_flag("--shuffle", opt->shuffle, "Use a permutation seeded by --seed and --epoch (a new one each epoch)")
      ->envname("VSTASH_SHUFFLE");
  sub->add_option("--seed", opt->seed, "Permutation seed (default 0)")->envname("VSTASH_SEED");
  sub->add_option("--epoch", opt->epoch, "Epoch number: with --shuffle, each epoch has its own order (default 0)")
      ->envname("VSTASH_EPOCH");
  sub->add_option("--rank", opt->rank, "This worker's rank in 0..world-size-1 (default 0)")->envname("VSTASH_RANK");
  sub->add_option("--world-size", opt->world_size,
                  "Number of ranks: rank r reads order[r], order[r+W], ... like DistributedSampler (default 1)")
      ->envname("VSTASH_WORLD_SIZE");
  sub->add_option("--remainder", opt->remainder,
                  "When world-size does not divide the rows: uneven (default; the first ranks read one row more, "
                  "every row exactly once), drop (the order's last rows are skipped) or pad (the order repeats "
                  "from its start, DistributedSampler's default)")
      ->check(CLI::IsMember({"uneven", "drop", "pad"}))
      ->envname("VSTASH_REMAINDER");
  sub->add_flag("--drop-last", opt->drop_last, "With --stream: skip the shard's last, short batch")
      ->envname("VSTASH_DROP_LAST");
  sub->add_flag("--stream", opt->stream, "Write every batch of the epoch (or the rank's shard), in order")
      ->envname("VSTASH_STREAM");
  sub->add_option("--workers", opt->workers,
                  "With --stream: threads prefetching batches from the store (default 2; none "
                  "when the store gathers rows from memory, as the local store does)")
      ->envname("VSTASH_WORKERS");
  sub->add_option("--start-batch", opt->start_batch,
                  "With --stream: resume at this batch number (with --order global: the global batch, at any "
                  "world size) (default 0)")
      ->envname("VSTASH_START_BATCH");
  sub->add_option("--filter", opt->filter,
                  "Only rows matching this filter (JSON or @FILE.json; $label names the row's label): the epoch's "
                  "order is over them")
      ->envname("VSTASH_FILTER");
  sub->add_option("--split", opt->split,
                  "Split the rows by a stable hash of (id, --seed), e.g. train=0.8,val=0.1,test=0.1; needs --take")
      ->envname("VSTASH_SPLIT");
  sub->add_option("--take", opt->take, "The --split part to read, e.g. train")->envname("VSTASH_TAKE");
  sub->add_flag("--with-ids", opt->with_ids,
                "With --stream -o -: a third NPY document per batch, the rows' ids ('<U' array)")
      ->envname("VSTASH_WITH_IDS");
  sub->add_option("--order", opt->order,
                  "strided (default: rank r reads order[r::W], like DistributedSampler) or global (the same global "
                  "batches for any world size; each rank reads its share of each)")
      ->check(CLI::IsMember({"strided", "global"}))
      ->envname("VSTASH_ORDER");
  sub->add_option("--global-batch-size", opt->global_batch_size,
                  "With --order global: rows in a global batch, split between the ranks (default --size x "
                  "--world-size)")
      ->envname("VSTASH_GLOBAL_BATCH_SIZE");
  sub->add_option("-o,--output", opt->output,
                  "OUT.npy (+ OUT.labels.npy, OUT.ids.npy) or OUT.h5 (/data /labels /ids); with --stream a pattern "
                  "such as batches/b{}.npy ({} = batch number, 6 digits) or - for an NPY stream on stdout "
                  "(data, then labels, per batch)")
      ->required();
  sub->callback([opt, &ctx] { run_batch(*opt, ctx); });
}

}  // namespace vstash::commands
