// SPDX-License-Identifier: MIT
// `vstash index [DATASET]`: builds the dataset's search index now, or rebuilds one that writes
// made stale (local HNSW; pgvector builds its own if missing). `ingest` does the same at its
// end unless --no-index; both show the build's progress on a terminal.
#include <fmt/format.h>
#include <memory>
#include <optional>
#include <string_view>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/output.hpp"
#include "src/progress.hpp"

namespace vstash::commands {

std::string build_search_index(backends::Backend& backend, const std::string& dataset, Context& ctx) {
  // One bar per phase of the build (pgvector: loading tuples, k-means, ...); phases
  // without a count show nothing.
  std::optional<ProgressBar> bar;
  std::string phase;
  auto show = [&](const backends::IndexProgress& p) {
    if (p.phase != phase && bar) {
      bar->finish();
      bar.reset();
    }
    phase = p.phase;
    if (p.phase != "done" && p.total > 0) {
      if (!bar) {
        // "building index: loading tuples" reads "index: loading tuples"
        const std::string_view prefix = "building index: ";
        const bool redundant = p.phase.compare(0, prefix.size(), prefix) == 0;
        bar.emplace("index: " + p.phase.substr(redundant ? prefix.size() : 0), p.total, true);
      }
      bar->update(p.done);
    }
  };
  return backend.finish_ingest(dataset, ctx.show_progress() ? backends::IndexProgressFn(show) : nullptr);
}

struct IndexOptions {
  std::string dataset;  // empty: --dataset / the profile's
};

namespace {

void run_index(const IndexOptions& opt, Context& ctx) {
  const std::string dataset = !opt.dataset.empty() ? opt.dataset : ctx.dataset();
  auto& backend = ctx.backend();
  require_dataset(backend, dataset);
  const std::string note = build_search_index(backend, dataset, ctx);
  if (ctx.json()) {
    output::print_json(
        {{"dataset", dataset}, {"index", note.empty() ? nlohmann::json(nullptr) : nlohmann::json(note)}});
    return;
  }
  output::print_text(
      (note.empty() ? fmt::format("{}: \"{}\": the index is current or not needed", backend.kind(), dataset) : note) +
      "\n");
}

}  // namespace

void register_index(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<IndexOptions>();
  auto* sub =
      parent.add_subcommand("index", "Build or rebuild a dataset's search index now (after --no-index or writes)");
  sub->add_option("dataset", opt->dataset, "Dataset to index (default: --dataset)");
  sub->callback([opt, &ctx] { run_index(*opt, ctx); });
}

}  // namespace vstash::commands
