// SPDX-License-Identifier: MIT
// What every subcommand shares: the global options on the root command, and the profile and
// backend they select, built lazily so that `--help` and parse errors never touch a store.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "backends/backend.hpp"
#include "src/profile.hpp"

namespace vstash::commands {

// Global options. Each also comes from a VSTASH_* variable; precedence is
// flag > environment > profile > built-in default.
struct GlobalOptions {
  std::string profile;       // --profile, VSTASH_PROFILE
  std::string config;        // --config, VSTASH_CONFIG
  std::string dataset;       // --dataset, VSTASH_DATASET (empty: the profile's default)
  bool json = false;         // --json, VSTASH_JSON
  bool quiet = false;        // --quiet, VSTASH_QUIET
  int verbose = 0;           // -v, VSTASH_VERBOSE
  bool no_progress = false;  // --no-progress, VSTASH_NO_PROGRESS
};

class Context {
 public:
  GlobalOptions global;

  // The selected profile and the backend it describes (built on first use).
  const Profile& profile();
  // The file the profile came from (it may name other profiles, e.g. `cache:`).
  const ProfileFile& profile_file();
  backends::Backend& backend();
  // Declares that the command only reads (call before backend()): the store is opened
  // read-only and never created (backends::Access::read_only).
  void only_reads() { m_access = backends::Access::read_only; }
  // --dataset if given, else the profile's default dataset.
  std::string dataset();
  // True when --dataset (or VSTASH_DATASET) was given explicitly.
  bool dataset_given() const { return !global.dataset.empty(); }

  bool json() const { return global.json; }
  // Draw progress bars: stderr is a terminal and no --quiet/--json/--no-progress.
  bool show_progress() const;
  // A diagnostic line on stderr unless --quiet (stdout carries data only).
  void note(const std::string& message) const;
  // Only with -v.
  void debug(const std::string& message) const;

 private:
  std::optional<ProfileFile> m_file;
  std::optional<Profile> m_profile;
  std::unique_ptr<backends::Backend> m_backend;
  backends::Access m_access = backends::Access::read_write;
};

// SIGINT handling: the handler only sets a flag; long commands call check_interrupted()
// between blocks, which throws so that open transactions roll back before exit 130.
void install_interrupt_handler();
bool interrupted();
void check_interrupted();

}  // namespace vstash::commands
