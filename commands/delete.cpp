// SPDX-License-Identifier: MIT
// `vstash delete`: rows by id or filter, a whole dataset, or a checkpoint. Bulk deletes
// (several ids, a filter, a dataset) are confirmed: --yes, or a prompt on a terminal.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <memory>
#include <set>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct DeleteOptions {
  std::string ids;
  std::vector<std::string> id;
  std::string filter;
  bool dataset_all = false;
  std::string checkpoint;
  bool dry_run = false;
  bool yes = false;
  bool ignore_missing = false;
};

namespace {

// The given ids that name no row (compared by the store's id_key, as `get` does).
std::vector<std::string> missing_ids(backends::Backend& backend, const std::vector<std::string>& ids,
                                     const backends::RowBatch& found_rows) {
  std::set<std::string> found;
  for (const auto& id : found_rows.ids) {
    found.insert(backend.id_key(id));
  }
  std::vector<std::string> missing;
  for (const auto& id : ids) {
    if (!found.count(backend.id_key(id))) {
      missing.push_back(id);
    }
  }
  return missing;
}

// What one delete matched: its description, the count, and the ids that name no row.
struct DeleteOutcome {
  std::string what;
  int64_t matched = 0;
  std::vector<std::string> missing;
};

DeleteOutcome delete_checkpoint(const DeleteOptions& opt, nlohmann::json& result, Context& ctx) {
  auto& backend = ctx.backend();
  const auto ref = backends::CheckpointRef::parse(opt.checkpoint);
  std::string path;
  for (const auto& c : backend.checkpoints().list_checkpoints(ref.model)) {
    if (ref.epoch ? c.epoch == *ref.epoch : c.latest) {
      path = c.path;
    }
  }
  if (path.empty()) {
    throw NotFoundError(fmt::format("checkpoint \"{}\" does not exist", opt.checkpoint));
  }
  result["target"] = "checkpoint";
  result["checkpoint"] = path;
  if (!opt.dry_run) {
    backend.checkpoints().delete_checkpoint(path);
  }
  return {fmt::format("checkpoint {}", path), 1, {}};
}

// The dataset whole (--dataset-all), the rows matching --filter, or the rows with the given ids.
DeleteOutcome delete_rows(const DeleteOptions& opt, const std::vector<std::string>& ids,
                          const std::optional<Filter>& filter, nlohmann::json& result, Context& ctx) {
  auto& backend = ctx.backend();
  const std::string dataset = ctx.dataset();
  const auto info = require_dataset(backend, dataset);
  result["dataset"] = dataset;
  DeleteOutcome out;
  bool bulk = false;
  if (opt.dataset_all) {
    result["target"] = "dataset";
    out.matched = info.rows;
    bulk = true;
    out.what = fmt::format("dataset \"{}\" and its {} rows", dataset, out.matched);
  } else if (filter) {
    result["target"] = "filter";
    out.matched = backend.count(dataset, &*filter);
    bulk = true;
    out.what = fmt::format("{} rows of \"{}\" matching the filter", out.matched, dataset);
  } else {
    result["target"] = "ids";
    const auto found = backend.fetch(dataset, ids);
    out.matched = static_cast<int64_t>(found.size());
    out.missing = missing_ids(backend, ids, found);
    result["missing"] = out.missing;
    bulk = ids.size() > 1;
    out.what = fmt::format("{} of {} given ids from \"{}\"", out.matched, ids.size(), dataset);
  }
  if (opt.dry_run) {
    return out;
  }
  if (bulk && !confirm_bulk(fmt::format("delete {}?", out.what), opt.yes, "delete")) {
    throw Error("delete: not confirmed; nothing deleted");
  }
  if (opt.dataset_all) {
    backend.drop_dataset(dataset);
  } else if (filter) {
    out.matched = backend.delete_where(dataset, *filter);
  } else {
    out.matched = backend.delete_ids(dataset, ids);
  }
  return out;
}

void run_delete(const DeleteOptions& opt, Context& ctx) {
  std::vector<std::string> ids = split_list(opt.ids);
  ids.insert(ids.end(), opt.id.begin(), opt.id.end());
  const int targets = !ids.empty() + !opt.filter.empty() + opt.dataset_all + !opt.checkpoint.empty();
  if (targets != 1) {
    throw UsageError("delete: give exactly one of --ids/--id, --filter, --dataset-all or --checkpoint");
  }
  std::optional<Filter> filter;
  if (!opt.filter.empty()) {
    filter = parse_filter_arg(opt.filter);
  }
  if (opt.dry_run) {
    ctx.only_reads();  // a dry run must not create a store, nor need write access to one
  }
  nlohmann::json result = {{"dry_run", opt.dry_run}};
  const DeleteOutcome out =
      opt.checkpoint.empty() ? delete_rows(opt, ids, filter, result, ctx) : delete_checkpoint(opt, result, ctx);
  result["matched"] = out.matched;
  result["deleted"] = opt.dry_run ? 0 : out.matched;
  if (ctx.json()) {
    output::print_json(result);
  } else {
    output::print_text(fmt::format("{} {}\n", opt.dry_run ? "dry run: would delete" : "deleted", out.what));
  }
  // The same rule as `get` and `update`: an id that names no row is exit 4 (after the others
  // are deleted), unless the caller says that is fine, as `rm -f` does.
  if (!out.missing.empty() && !opt.ignore_missing) {
    throw NotFoundError(fmt::format("dataset \"{}\": no row with id \"{}\" (--ignore-missing accepts that)",
                                    ctx.dataset(), fmt::join(out.missing, "\", \"")));
  }
}

}  // namespace

void register_delete(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<DeleteOptions>();
  auto* sub = parent.add_subcommand("delete", "Delete rows, a dataset or a checkpoint");
  sub->add_option("--ids", opt->ids, "Comma-separated row ids");
  sub->add_option("--id", opt->id, "One row id (repeatable)");
  sub->add_option("--filter", opt->filter, "Delete rows whose metadata match (JSON or @FILE.json)");
  sub->add_flag("--dataset-all", opt->dataset_all, "Drop the whole dataset");
  sub->add_option("--checkpoint", opt->checkpoint, "Delete checkpoint MODEL@EPOCH or MODEL@latest");
  sub->add_flag("--ignore-missing", opt->ignore_missing,
                "With --id/--ids: ids that name no row are not an error (otherwise exit 4, after the others are "
                "deleted)");
  sub->add_flag("--dry-run", opt->dry_run, "Show what would be deleted; delete nothing");
  sub->add_flag("-y,--yes", opt->yes, "Confirm a bulk delete without a prompt")->envname("VSTASH_YES");
  sub->callback([opt, &ctx] { run_delete(*opt, ctx); });
}

}  // namespace vstash::commands
