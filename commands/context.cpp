// SPDX-License-Identifier: MIT
// Lazy profile/backend construction and the interrupt flag.
#include "commands/context.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>

#include "backends/registry.hpp"
#include "commands/commands.hpp"
#include "src/errors.hpp"
#include "src/progress.hpp"

namespace vstash::commands {

namespace {
volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_sigint(int) { g_interrupted = 1; }
}  // namespace

const ProfileFile& Context::profile_file() {
  if (!m_file) {
    m_file = find_profile_file(global.config);
  }
  return *m_file;
}

const Profile& Context::profile() {
  if (!m_profile) {
    m_profile = select_profile(profile_file(), global.profile);
    debug(fmt::format("profile \"{}\" ({}) type {}", m_profile->name(), m_profile->source(), m_profile->type()));
  }
  return *m_profile;
}

backends::Backend& Context::backend() {
  if (!m_backend) {
    m_backend = backends::create_backend(profile(), &profile_file(), m_access);
  }
  return *m_backend;
}

std::string Context::dataset() {
  std::string name = dataset_given() ? global.dataset : profile().default_dataset();
  backends::check_dataset_name(name);
  return name;
}

bool Context::show_progress() const { return stderr_is_tty() && !global.quiet && !global.json && !global.no_progress; }

void Context::note(const std::string& message) const {
  if (!global.quiet) {
    std::fprintf(stderr, "%s\n", message.c_str());
  }
}

void Context::debug(const std::string& message) const {
  if (global.verbose > 0) {
    std::fprintf(stderr, "vstash: %s\n", message.c_str());
  }
}

std::string version_text() {
  return fmt::format("vstash {}\nbackends: {}", VSTASH_VERSION, fmt::join(backends::compiled_backends(), " "));
}

void register_global_options(CLI::App& app, Context& ctx) {
  app.set_version_flag("--version", &version_text, "Print the version and the compiled-in backends");
  // Global options may follow the subcommand (`vstash stats --json`).
  app.fallthrough();
  app.require_subcommand(1);
  auto& g = ctx.global;
  app.add_option("--profile", g.profile, "Profile to use (default: the file's `default:`, else local)")
      ->envname("VSTASH_PROFILE");
  app.add_option("--config", g.config,
                 "Profile file (default: ./vstash.yaml, then $XDG_CONFIG_HOME/vstash/config.yaml)")
      ->envname("VSTASH_CONFIG");
  app.add_option("--dataset", g.dataset, "Dataset to act on (default: the profile's dataset)")
      ->envname("VSTASH_DATASET");
  app.add_flag("--json", g.json, "Machine-readable JSON on stdout")->envname("VSTASH_JSON");
  app.add_flag("-q,--quiet", g.quiet, "No diagnostics on stderr except errors")->envname("VSTASH_QUIET");
  app.add_flag("-v,--verbose", g.verbose, "More diagnostics on stderr (repeat for more)")->envname("VSTASH_VERBOSE");
  app.add_flag("--no-progress", g.no_progress, "Never draw progress bars")->envname("VSTASH_NO_PROGRESS");
}

namespace {
std::string env_part(const std::string& name) {
  std::string out;
  for (const char c : name) {
    out += c == '-' || c == ' ' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}
}  // namespace

void assign_env_names(CLI::App& app, const std::string& prefix) {
  for (CLI::Option* opt : app.get_options()) {
    if (opt == app.get_help_ptr() || opt == app.get_version_ptr() || opt->get_lnames().empty() ||
        !opt->get_envname().empty()) {
      continue;
    }
    opt->envname(prefix + "_" + env_part(opt->get_lnames().front()));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    assign_env_names(*sub, prefix + "_" + env_part(sub->get_name()));
  }
}

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  // Blocking calls continue and the command stops at the next block; a second Ctrl-C
  // (SA_RESETHAND) kills at once, for a command stuck waiting on a server.
  sa.sa_flags = SA_RESTART | SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
}

bool interrupted() { return g_interrupted != 0; }

void check_interrupted() {
  if (interrupted()) {
    throw Error("interrupted", ExitCode::interrupted);
  }
}

}  // namespace vstash::commands
