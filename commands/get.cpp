// SPDX-License-Identifier: MIT
// `vstash get ID...`: rows by id.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <memory>
#include <set>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct GetOptions {
  std::vector<std::string> ids;
  bool include_values = false;
};

namespace {

void run_get(const GetOptions& opt, Context& ctx) {
  ctx.only_reads();
  const std::string dataset = ctx.dataset();
  auto& backend = ctx.backend();
  require_dataset(backend, dataset);
  const auto rows = backend.fetch(dataset, opt.ids);
  std::set<std::string> found;
  for (const auto& id : rows.ids) {
    found.insert(backend.id_key(id));
  }
  std::vector<std::string> missing;
  for (const auto& id : opt.ids) {
    if (!found.count(backend.id_key(id))) {
      missing.push_back(id);
    }
  }
  if (ctx.json()) {
    auto arr = nlohmann::json::array();
    for (size_t i = 0; i < rows.size(); ++i) {
      arr.push_back(row_json(rows, i, opt.include_values));
    }
    output::print_json({{"dataset", dataset}, {"rows", arr}, {"missing", missing}});
  } else if (rows.size() > 0) {
    std::vector<std::string> header{"id", "index", "label", "metadata"};
    if (opt.include_values) {
      header.push_back("values");
    }
    output::TextTable table(header, {false, true});
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto j = row_json(rows, i, opt.include_values);
      table.add_row({rows.ids[i], output::cell_json(j["index"]), output::cell_json(j.value("label", nlohmann::json())),
                     output::cell_json(j["metadata"]), opt.include_values ? j["values"].dump() : ""});
    }
    output::print_text(table.render());
  }
  if (!missing.empty()) {
    throw NotFoundError(fmt::format("dataset \"{}\": no row with id \"{}\"", dataset, fmt::join(missing, "\", \"")));
  }
}

}  // namespace

void register_get(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<GetOptions>();
  auto* sub = parent.add_subcommand("get", "Show rows by id (exit 4 if any is missing)");
  sub->add_option("ID", opt->ids, "Row ids")->required();
  sub->add_flag("--include-values", opt->include_values, "Include each row's vector");
  sub->callback([opt, &ctx] { run_get(*opt, ctx); });
}

}  // namespace vstash::commands
