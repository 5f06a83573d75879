// SPDX-License-Identifier: MIT
// vstash entry point: builds the command tree, parses, and maps every failure to one line on
// stderr and an exit code (src/errors.hpp). This is the only catch in the program.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

#include "commands/commands.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"

namespace {

int report(const std::string& message, vstash::ExitCode code) {
  std::string line = message;
  for (char& c : line) {
    if (c == '\n') {
      c = ' ';
    }
  }
  std::fprintf(stderr, "vstash: error: %s\n", line.c_str());
  return static_cast<int>(code);
}

// The first word that is neither an option nor a global option's value, when it names no
// command: CLI11 would only say "A subcommand is required", which hides the typo.
std::string unknown_command(CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--profile" || arg == "--config" || arg == "--dataset") {
      ++i;
      continue;
    }
    if (arg.empty() || arg[0] == '-') {
      continue;
    }
    try {
      app.get_subcommand(arg);
      return "";
    } catch (const CLI::OptionNotFound&) {
      return arg;
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vstash;
  commands::Context ctx;
  CLI::App app{"Move ML data in and out of vector databases.", "vstash"};
  commands::register_global_options(app, ctx);
  commands::register_ingest(app, ctx);
  commands::register_batch(app, ctx);
  commands::register_export(app, ctx);
  commands::register_copy(app, ctx);
  commands::register_check(app, ctx);
  commands::register_query(app, ctx);
  commands::register_insert(app, ctx);
  commands::register_update(app, ctx);
  commands::register_get(app, ctx);
  commands::register_delete(app, ctx);
  commands::register_checkpoint(app, ctx);
  commands::register_stats(app, ctx);
  commands::register_compact(app, ctx);
  commands::register_index(app, ctx);
  commands::register_profiles(app, ctx);
  commands::register_progress(app, ctx);
  commands::assign_env_names(app);
  commands::install_interrupt_handler();
  // A server that closes its socket while we write must be an error we report (exit 3), not
  // a silent death; a reader that closes our stdout still ends us quietly
  // (output::stdout_write_failed).
  std::signal(SIGPIPE, SIG_IGN);

  try {
    app.parse(argc, argv);
    vstash::output::flush_stdout();
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      return app.exit(e);  // --help, --version
    }
    if (const std::string word = unknown_command(app, argc, argv); !word.empty()) {
      return report("unknown command \"" + word + "\" (see vstash --help)", ExitCode::usage);
    }
    if (argc == 1) {
      return report("a command is required (see vstash --help)", ExitCode::usage);
    }
    return report(e.what(), ExitCode::usage);
  } catch (const Error& e) {
    return report(e.what(), commands::interrupted() ? ExitCode::interrupted : e.code());
  } catch (const std::exception& e) {
    return report(e.what(), commands::interrupted() ? ExitCode::interrupted : ExitCode::fatal);
  }
  return commands::interrupted() ? report("interrupted", ExitCode::interrupted) : 0;
}
