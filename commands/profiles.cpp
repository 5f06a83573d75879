// SPDX-License-Identifier: MIT
// `vstash profiles list|show`: the profiles file and its profiles, secrets redacted.
#include <fmt/format.h>
#include <memory>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct ProfilesShowOptions {
  std::string name;
};

namespace {

void run_profiles_list(Context& ctx) {
  const ProfileFile file = find_profile_file(ctx.global.config);
  const std::string selected = select_profile(file, ctx.global.profile).name();
  auto arr = nlohmann::json::array();
  output::TextTable table({"", "name", "type", "dataset"});
  for (const auto& [name, p] : file.profiles) {
    arr.push_back(
        {{"name", name}, {"type", p.type()}, {"dataset", p.default_dataset()}, {"selected", name == selected}});
    table.add_row({name == selected ? "*" : "", name, p.type(), p.default_dataset()});
  }
  if (file.profiles.empty()) {
    const Profile builtin = select_profile(file, "");
    arr.push_back({{"name", builtin.name()},
                   {"type", builtin.type()},
                   {"dataset", builtin.default_dataset()},
                   {"selected", true}});
    table.add_row({"*", builtin.name(), builtin.type(), builtin.default_dataset()});
  }
  if (ctx.json()) {
    nlohmann::json j = {{"profiles", arr}};
    j["file"] = file.path.empty() ? nlohmann::json(nullptr) : nlohmann::json(file.path);
    j["default"] = file.default_profile ? nlohmann::json(*file.default_profile) : nlohmann::json(nullptr);
    output::print_json(j);
    return;
  }
  output::print_text(fmt::format("file: {}\n", file.path.empty() ? "(none: built-in local store)" : file.path) +
                     table.render());
}

void run_profiles_show(const ProfilesShowOptions& opt, Context& ctx) {
  const ProfileFile file = find_profile_file(ctx.global.config);
  const Profile p = select_profile(file, opt.name.empty() ? ctx.global.profile : opt.name);
  const auto values = p.redacted();
  if (ctx.json()) {
    output::print_json({{"name", p.name()}, {"type", p.type()}, {"source", p.source()}, {"values", values}});
    return;
  }
  std::string text = fmt::format("name: {}\ntype: {}\nsource: {}\n", p.name(), p.type(), p.source());
  for (const auto& [key, value] : values.items()) {
    text += fmt::format("{}: {}\n", key, output::cell_json(value, 200));
  }
  output::print_text(text);
}

}  // namespace

void register_profiles(CLI::App& parent, Context& ctx) {
  auto* cmd = parent.add_subcommand("profiles", "List profiles or show one (secrets redacted)");
  cmd->require_subcommand(1);
  cmd->add_subcommand("list", "List the profiles of the profile file")->callback([&ctx] { run_profiles_list(ctx); });
  auto show = std::make_shared<ProfilesShowOptions>();
  auto* s = cmd->add_subcommand("show", "Show one profile (default: the selected one)");
  s->add_option("NAME", show->name, "Profile name");
  s->callback([show, &ctx] { run_profiles_show(*show, ctx); });
}

}  // namespace vstash::commands
