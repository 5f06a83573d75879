// SPDX-License-Identifier: MIT
// Every subcommand's registration function, in the order `vstash --help` lists them.
// Each lives in commands/<name>.cpp with its Options struct and run function.
#pragma once

#include <CLI/CLI.hpp>

#include "commands/context.hpp"

namespace vstash::commands {

void register_ingest(CLI::App& parent, Context& ctx);
void register_batch(CLI::App& parent, Context& ctx);
void register_export(CLI::App& parent, Context& ctx);
void register_copy(CLI::App& parent, Context& ctx);
void register_check(CLI::App& parent, Context& ctx);
void register_query(CLI::App& parent, Context& ctx);
void register_insert(CLI::App& parent, Context& ctx);
void register_update(CLI::App& parent, Context& ctx);
void register_get(CLI::App& parent, Context& ctx);
void register_delete(CLI::App& parent, Context& ctx);
void register_checkpoint(CLI::App& parent, Context& ctx);
void register_stats(CLI::App& parent, Context& ctx);
void register_compact(CLI::App& parent, Context& ctx);
void register_index(CLI::App& parent, Context& ctx);
void register_profiles(CLI::App& parent, Context& ctx);
void register_progress(CLI::App& parent, Context& ctx);

// The global options (--profile, --config, --json, ...) on the root command.
void register_global_options(CLI::App& app, Context& ctx);
// Gives every long option that has no VSTASH_* variable yet the name
// PREFIX_<COMMAND PATH>_<OPTION>, e.g. VSTASH_QUERY_INCLUDE_VALUES, so that every option can
// come from the environment (flag > environment > profile > default). Call after registering.
void assign_env_names(CLI::App& app, const std::string& prefix = "VSTASH");
// Builds dataset's search index (Backend::finish_ingest) with a progress bar on a terminal;
// returns the backend's one-line note ("" if nothing was built). Used by ingest and index.
std::string build_search_index(backends::Backend& backend, const std::string& dataset, Context& ctx);
// "vstash 0.1.0" plus the compiled-in backends.
std::string version_text();

}  // namespace vstash::commands
