// SPDX-License-Identifier: MIT
// vstash entry point: builds the command tree (the part the command line can reach), parses,
// and maps every failure to one line on stderr and an exit code (src/errors.hpp). This is the
// only catch in the program.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

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

using Register = void (*)(CLI::App&, vstash::commands::Context&);
struct Command {
  std::string_view name;
  Register add;
};

// Every subcommand, in the order `vstash --help` lists them.
constexpr Command k_commands[] = {
    {"ingest", vstash::commands::register_ingest},
    {"batch", vstash::commands::register_batch},
    {"export", vstash::commands::register_export},
    {"copy", vstash::commands::register_copy},
    {"check", vstash::commands::register_check},
    {"query", vstash::commands::register_query},
    {"insert", vstash::commands::register_insert},
    {"update", vstash::commands::register_update},
    {"get", vstash::commands::register_get},
    {"delete", vstash::commands::register_delete},
    {"checkpoint", vstash::commands::register_checkpoint},
    {"stats", vstash::commands::register_stats},
    {"compact", vstash::commands::register_compact},
    {"index", vstash::commands::register_index},
    {"profiles", vstash::commands::register_profiles},
    {"progress", vstash::commands::register_progress},
};

const Command* find_command(std::string_view word) {
  for (const Command& c : k_commands) {
    if (c.name == word) {
      return &c;
    }
  }
  return nullptr;
}

// The first word that is neither an option nor a global option's value (argc if none).
int first_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--profile" || arg == "--config" || arg == "--dataset") {
      ++i;
    } else if (!arg.empty() && arg[0] != '-') {
      return i;
    }
  }
  return argc;
}

// Builds only what this command line can reach: the command its first word names when no
// other word names a command (such a word could be parsed against the other commands), none
// for a lone --version, else every command (--help, a typo, no command). Parsing, help and
// errors are then those of the whole tree; building all of it costs most of start-up.
void register_commands(CLI::App& app, vstash::commands::Context& ctx, int argc, char** argv) {
  const int at = first_word(argc, argv);
  const Command* chosen = at < argc ? find_command(argv[at]) : nullptr;
  for (int i = 1; chosen && i < argc; ++i) {
    if (i != at && find_command(argv[i])) {
      chosen = nullptr;
    }
  }
  if (chosen) {
    chosen->add(app, ctx);
  } else if (!(argc == 2 && std::string_view(argv[1]) == "--version")) {
    for (const Command& c : k_commands) {
      c.add(app, ctx);
    }
  }
}

// The first word when it names no command: CLI11 would only say "A subcommand is required",
// which hides the typo.
std::string unknown_command(int argc, char** argv) {
  const int at = first_word(argc, argv);
  return at < argc && !find_command(argv[at]) ? std::string(argv[at]) : std::string();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vstash;
  commands::Context ctx;
  CLI::App app{"Move ML data in and out of vector databases.", "vstash"};
  commands::register_global_options(app, ctx);
  register_commands(app, ctx, argc, argv);
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
    if (const std::string word = unknown_command(argc, argv); !word.empty()) {
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
