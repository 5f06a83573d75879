// SPDX-License-Identifier: MIT
// `vstash ingest DATA`: stream an array file into a dataset in bounded memory.
//
// Resuming: the dataset's metadata key `ingest_watermark` holds the number of file rows known
// to be committed (and `ingest_base` the index of file row 0); see workflows/ingest/pipeline.hpp for how
// it advances when several writers commit blocks out of order. --resume starts there; rows
// are upserted by id, so re-sent rows replace themselves and no duplicates appear.
//
// Sharded (--rank R --world-size W): the process writes file rows [R*N/W, (R+1)*N/W) at the
// indices and ids a single-process ingest gives them, so W processes started at once, on any
// machines, fill one dataset. Each rank keeps its own resume point,
// `ingest_watermark_rank_R` (beside `ingest_world_size`), which the catalog merges key by key,
// so ranks never overwrite each other's; next_index only moves forward, so it ends at N
// whatever order the ranks finish in. No rank builds the search index (none knows when the
// others are done): `vstash index` does, once.
#include <fmt/format.h>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "backends/registry.hpp"
#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "commands/ingestsource.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"
#include "src/progress.hpp"
#include "workflows/ingest/pipeline.hpp"

namespace vstash::commands {

struct IngestOptions {
  IngestFiles files;
  std::string metric;
  int64_t batch_size = 0;  // 0: by row size (ingest::default_block_rows)
  int writers = 0;         // 0: the backend's choice
  bool batch_size_given = false;
  bool no_index = false;
  bool append = false;
  bool resume = false;
  bool dry_run = false;
  ShardFlags shards;  // --rank/--world-size
};

namespace {

void check_ingest_flags(const IngestOptions& opt) {
  if (opt.batch_size_given || opt.batch_size != 0) {
    check_range("--batch-size", opt.batch_size, 1, int64_t{1} << 24);
  }
  if (opt.writers != 0) {
    check_range("--writers", opt.writers, 1, 64);
  }
  opt.shards.check();
  if (opt.shards.shard.sharded()) {
    if (opt.append) {
      throw UsageError(
          "--append: not with --rank (ranks must agree on the first index); ingest the new file without "
          "--append into an empty dataset, or with --append from one process");
    }
  }
}

bool sharded(const IngestOptions& opt) { return opt.shards.shard.sharded(); }

using ingest::Slice;

Slice slice_of(const IngestOptions& opt, int64_t total) { return ingest::slice_rows(total, opt.shards.shard); }

std::string watermark_key(const IngestOptions& opt) { return ingest::watermark_key(opt.shards.shard); }

// The dataset's spec from the source file's rows and labels and the metric.
backends::DatasetSpec ingest_spec(const IngestOptions& opt, const IngestSource& src, Context& ctx) {
  backends::DatasetSpec spec;
  spec.name = ctx.dataset();
  spec.dtype = src.dtype();
  spec.row_shape = src.row_shape();
  if (src.labels()) {
    spec.label_dtype = src.labels()->dtype();
    spec.label_shape = src.labels()->row_shape();
  }
  // Metric precedence: --metric/VSTASH_METRIC > the file's own > the existing dataset's (for
  // --append/--resume) > profile `metric` > cosine.
  std::string metric = opt.metric;
  if (metric.empty() && src.metric()) {
    metric = backends::metric_name(*src.metric());
  }
  if (metric.empty() && (opt.append || opt.resume) && !opt.dry_run) {
    if (auto existing = ctx.backend().dataset_info(spec.name)) {
      metric = backends::metric_name(existing->spec.metric);
    }
  }
  spec.metric = backends::parse_metric(metric.empty() ? ctx.profile().get_string("metric", "cosine") : metric);
  return spec;
}

void print_dry_run(nlohmann::json& result, const backends::DatasetSpec& spec, const IngestSource& src, Slice slice,
                   int64_t bytes, Context& ctx) {
  const int64_t total = slice.end - slice.begin;
  const int64_t slice_bytes = src.rows() > 0 ? bytes / src.rows() * total : 0;
  result["rows"] = total;
  result["bytes"] = slice_bytes;
  if (ctx.json()) {
    output::print_json(result);
    return;
  }
  output::print_text(fmt::format(
      "dry run: would write {} rows of {} {} to dataset \"{}\" ({}, metric {}{}); "
      "nothing written\n",
      total, dtype_name(spec.dtype), shape_to_string(spec.row_shape), spec.name, output::human_bytes(slice_bytes),
      backends::metric_name(spec.metric), src.labels() ? ", with labels" : ""));
}

// Where the load starts in the file, where it ends, and the index of file row 0.
struct IngestStart {
  int64_t start = 0;
  int64_t base = 0;
  Slice slice;
};

// A single-process ingest's start in a dataset that already has rows.
IngestStart unsharded_start(const IngestOptions& opt, const backends::DatasetInfo& info, int64_t total) {
  const auto& meta = info.spec.metadata;
  IngestStart at;
  at.slice = {0, total};
  if (opt.resume) {
    if (meta.contains(ingest::k_world_size_key)) {
      throw UsageError(fmt::format(
          "--resume: dataset \"{}\" was ingested with --world-size {}: resume each unfinished rank with --rank "
          "and --world-size",
          info.spec.name, meta[ingest::k_world_size_key].dump()));
    }
    at.start = std::min(meta.value("ingest_watermark", int64_t{0}), total);
    at.base = meta.value("ingest_base", int64_t{0});
  } else if (opt.append) {
    at.base = info.next_index;
  } else {
    throw ConflictError(
        fmt::format("dataset \"{}\" already has {} rows: pass --resume to finish an interrupted "
                    "ingest or --append to add rows",
                    info.spec.name, info.rows));
  }
  return at;
}

// Checks --writers against the backend, decides the start from --resume/--append, and creates
// (or checks) the dataset with the resume point in its metadata.
IngestStart prepare_dataset(const IngestOptions& opt, backends::DatasetSpec& spec, const IngestSource& src,
                            Context& ctx) {
  auto& backend = ctx.backend();
  if (opt.writers > backend.max_ingest_writers()) {
    throw UsageError(
        fmt::format("--writers: the {} backend takes at most {} writer(s) per dataset; its profile's "
                    "`parallel` sets how many requests one writer sends at once",
                    backend.kind(), backend.max_ingest_writers()));
  }
  opt.shards.name_writer(backend);
  const int64_t total = src.rows();
  IngestStart at;
  at.slice = slice_of(opt, total);
  at.start = at.slice.begin;
  const auto info = backend.dataset_info(spec.name);
  if (sharded(opt) && info) {
    at.start = ingest::sharded_start(*info, opt.shards.shard, at.slice, opt.resume, "ingest");
  } else if (info && info->rows > 0) {
    at = unsharded_start(opt, *info, total);
  }
  spec.metadata = {{"ingest_base", at.base}, {watermark_key(opt), at.start}, {"ingest_source", src.name()}};
  if (sharded(opt)) {
    spec.metadata[ingest::k_world_size_key] = opt.shards.shard.world_size;
  }
  backend.create_dataset(spec);
  if (at.start > at.slice.begin) {
    ctx.note(fmt::format("resuming at row {} of {}", at.start, at.slice.end));
  }
  return at;
}

// One connection per writer; a single writer shares the command's own.
struct WriterConnections {
  std::vector<std::unique_ptr<backends::Backend>> own;
  std::vector<backends::Backend*> connections;
};

WriterConnections open_writers(const IngestOptions& opt, Context& ctx) {
  auto& backend = ctx.backend();
  const int writers = opt.writers > 0 ? opt.writers : backend.ingest_writers();
  WriterConnections w;
  if (writers <= 1) {
    w.connections.push_back(&backend);
    return w;
  }
  for (int i = 0; i < writers; ++i) {
    w.own.push_back(backends::create_backend(ctx.profile(), &ctx.profile_file()));
    opt.shards.name_writer(*w.own.back());
    w.connections.push_back(w.own.back().get());
  }
  return w;
}

// Runs the ingest pipeline over rows [start, total) with a progress bar; returns the seconds taken.
double load_rows(const IngestOptions& opt, IngestSource& src, const backends::DatasetSpec& spec, IngestStart at,
                 int64_t batch_size, const std::vector<backends::Backend*>& connections, Context& ctx) {
  const auto t0 = std::chrono::steady_clock::now();
  ProgressBar bar("ingest", at.slice.end - at.start, ctx.show_progress());
  ingest::IngestPlan plan;
  plan.spec = spec;
  plan.start = at.start;
  plan.total = at.slice.end;
  plan.batch_size = batch_size;
  plan.base = at.base;
  plan.watermark_key = watermark_key(opt);
  ingest::run_pipeline([&](int64_t first, int64_t count) { return src.read(first, count, at.base); }, plan, connections,
                       [&](int64_t done) {
                         bar.update(done);
                         check_interrupted();
                       });
  bar.finish();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The load's figures into `result`, and the text line unless --json.
void report_load(nlohmann::json& result, int64_t total, int64_t bytes, IngestStart at, size_t writers, double secs,
                 Context& ctx) {
  const int64_t written = at.slice.end - at.start;
  const double written_bytes =
      total > 0 ? static_cast<double>(bytes) * static_cast<double>(written) / static_cast<double>(total) : 0.0;
  result["rows"] = written;
  result["skipped_rows"] = at.start - at.slice.begin;
  result["writers"] = writers;
  result["bytes"] = static_cast<int64_t>(written_bytes);
  result["seconds"] = secs;
  result["rows_per_second"] = secs > 0 ? static_cast<double>(written) / secs : 0.0;
  result["mb_per_second"] = secs > 0 ? written_bytes / 1e6 / secs : 0.0;
  if (!ctx.json()) {
    // Said before the index build, which can take minutes on a large dataset.
    output::print_text(fmt::format("ingested {} rows into \"{}\" in {:.2f} s ({:.0f} rows/s, {:.1f} MB/s)\n", written,
                                   result["dataset"].get<std::string>(), secs, result["rows_per_second"].get<double>(),
                                   result["mb_per_second"].get<double>()));
  }
}

// The search index is built once the rows are in (the load's figures are the load alone).
void finish_index(const IngestOptions& opt, nlohmann::json& result, const std::string& dataset, Context& ctx) {
  std::string index_note;
  if (sharded(opt) && !opt.no_index && !ctx.json()) {
    ctx.note("no search index built by a rank: run `vstash index` once every rank has finished");
  }
  if (!opt.no_index && !sharded(opt)) {
    index_note = build_search_index(ctx.backend(), dataset, ctx);
    if (!index_note.empty() && !ctx.json()) {
      ctx.note(index_note);
    }
  }
  if (ctx.json()) {
    result["index"] = index_note.empty() ? nlohmann::json(nullptr) : nlohmann::json(index_note);
    output::print_json(result);
  }
}

void run_ingest(const IngestOptions& opt, Context& ctx) {
  check_ingest_flags(opt);
  IngestSource src = IngestSource::open(opt.files);
  if (!src.remark().empty()) {
    ctx.note(src.remark());
  }
  backends::DatasetSpec spec = ingest_spec(opt, src, ctx);
  const int64_t total = src.rows();
  const int64_t batch_size = opt.batch_size > 0 ? opt.batch_size : ingest::default_block_rows(spec);
  src.check_finite_all(batch_size);

  const int64_t bytes = total * static_cast<int64_t>(dtype_size(spec.dtype)) * spec.dimension();
  nlohmann::json result = {{"dataset", spec.name},
                           {"source", src.name()},
                           {"dtype", std::string(dtype_name(spec.dtype))},
                           {"shape", spec.row_shape},
                           {"metric", std::string(backends::metric_name(spec.metric))},
                           {"labels", src.labels().has_value()},
                           {"total_rows", total},
                           {"dry_run", opt.dry_run}};
  if (sharded(opt)) {
    const Slice slice = slice_of(opt, total);
    result["rank"] = opt.shards.shard.rank;
    result["world_size"] = opt.shards.shard.world_size;
    result["first_row"] = slice.begin;
    result["end_row"] = slice.end;
  }
  if (opt.dry_run) {
    print_dry_run(result, spec, src, slice_of(opt, total), bytes, ctx);
    return;
  }
  const IngestStart at = prepare_dataset(opt, spec, src, ctx);
  const WriterConnections writers = open_writers(opt, ctx);
  ctx.debug(fmt::format("ingest: {} writer(s), {} rows per write", writers.connections.size(), batch_size));
  const double secs = load_rows(opt, src, spec, at, batch_size, writers.connections, ctx);
  report_load(result, total, bytes, at, writers.connections.size(), secs, ctx);
  finish_index(opt, result, spec.name, ctx);
}

}  // namespace

void register_ingest(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<IngestOptions>();
  auto* sub = parent.add_subcommand("ingest", "Load an NPY, HDF5 or JSONL file into a dataset");
  sub->add_option("DATA", opt->files.data, "FILE.npy, FILE.h5:/path, an ann-benchmarks FILE.h5, or FILE.jsonl")
      ->required();
  sub->add_option("--labels", opt->files.labels, "Labels array (NPY or FILE.h5:/path), one per row");
  sub->add_option("--ids", opt->files.ids, "String ids (NPY unicode or HDF5 strings); default: row numbers");
  sub->add_option("--metadata", opt->files.metadata, "JSONL file with one metadata object per row");
  sub->add_option("--metric", opt->metric, "cosine, euclidean or dot (default: the profile's, else cosine)")
      ->envname("VSTASH_METRIC");
  sub->add_option("--batch-size", opt->batch_size,
                  "Rows per write (default 10240, fewer for rows over 1.6 kB so a block stays under 16 MiB)")
      ->envname("VSTASH_INGEST_BATCH_SIZE")
      ->each([opt](const std::string&) { opt->batch_size_given = true; });
  sub->add_option("--writers", opt->writers,
                  "Blocks written at once, each over its own connection (default: the backend's choice: 2 "
                  "for pgvector, 3 for Redis, else 1)")
      ->envname("VSTASH_INGEST_WRITERS");
  sub->add_flag("--no-index", opt->no_index,
                "Do not build the search index after the load (pgvector: the first query builds it)")
      ->envname("VSTASH_INGEST_NO_INDEX");
  sub->add_flag("--append", opt->append, "Add rows to a non-empty dataset (ids continue from its next index)");
  sub->add_flag("--resume", opt->resume, "Finish an interrupted ingest of the same file");
  sub->add_flag("--dry-run", opt->dry_run, "Validate and show what would be written; write nothing");
  opt->shards.add_to(*sub, "INGEST", "write");
  sub->callback([opt, &ctx] { run_ingest(*opt, ctx); });
}

}  // namespace vstash::commands
