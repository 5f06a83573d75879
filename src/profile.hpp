// SPDX-License-Identifier: MIT
// Named backend profiles from YAML.
//
//   # vstash.yaml
//   default: prod            # optional; the profile used without --profile
//   profiles:
//     prod:
//       type: pgvector
//       host: db.internal
//       password: ${PGPASSWORD}
//
// Where the file is found, first match wins (never merged, never silently skipped):
//   1. --config FILE
//   2. $VSTASH_CONFIG
//   3. ./vstash.yaml (a project file in the working directory)
//   4. $XDG_CONFIG_HOME/vstash/config.yaml (~/.config/vstash/config.yaml)
//   5. /etc/vstash/config.yaml
// Which profile: --profile NAME, else $VSTASH_PROFILE, else the file's `default:`, else
// "local". With no file at all, "local" is the built-in local store at the default path.
//
// Every key is checked against one table, profile_schema() below, which the backend registry
// (backends/registry.cpp) declares: an unknown key, a key that does not belong to the profile's
// type, or a value of the wrong type is a UsageError naming file:line and key. ${VAR} expands
// from the environment; an unset VAR is an error.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vstash {

enum class KeyType { string, integer, number, boolean };

// One key a profile may hold.
struct ProfileKey {
  std::string_view name;
  KeyType type = KeyType::string;
  // What the store uses when the key is absent, as text for people ("" when there is none).
  std::string_view fallback = {};
  // The store refuses to open without it (it says so when opened; loading does not check).
  bool required = false;
  // Redacted by Profile::redacted and scrubbed from server messages (Profile::secrets).
  bool secret = false;
};

// The keys of one backend type, beside the keys every type accepts.
struct BackendKeys {
  std::string_view type;
  std::vector<ProfileKey> keys;
};

struct ProfileSchema {
  std::vector<ProfileKey> common;     // accepted by every type
  std::vector<BackendKeys> backends;  // one per backend type, in display order
};

// The one table profiles are validated against. Declared here and defined by the backend
// registry (backends/registry.cpp), the one list of backends: the core reads it and never
// includes backends/. Every backend type is listed, compiled into this binary or not (a
// profile of a type left out of the build loads, and opening it says "not compiled in").
const ProfileSchema& profile_schema();

class Profile {
 public:
  Profile() = default;
  Profile(std::string name, std::string type, nlohmann::json values, std::string source);

  const std::string& name() const { return m_name; }
  const std::string& type() const { return m_type; }
  // "vstash.yaml" or "<built-in>": where it came from, for messages.
  const std::string& source() const { return m_source; }

  bool has(const std::string& key) const;
  // Typed getters. The value was type-checked on load, so these throw only for a missing
  // key without a default (UsageError: `profile "prod" (vstash.yaml): missing key "host"`).
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;

  // The default dataset vector commands act on: key `dataset`, else the store's own name
  // (index_name, collection_name or table_name), else "default".
  std::string default_dataset() const;
  // All values with secrets (api_key, password) replaced by "***".
  nlohmann::json redacted() const;
  // Secret values, so that error paths can scrub them from server messages.
  std::vector<std::string> secrets() const;
  // Sets a value (tests and --set style overrides); type-checked like a file value.
  void set(const std::string& key, const nlohmann::json& value);

 private:
  std::string m_name;
  std::string m_type;
  nlohmann::json m_values = nlohmann::json::object();
  std::string m_source;
};

struct ProfileFile {
  std::string path;  // empty when no file was found
  std::optional<std::string> default_profile;
  std::map<std::string, Profile> profiles;
};

// Parses and validates one file. Throws UsageError with file:line.
ProfileFile load_profile_file(const std::string& path);
// Parses YAML text as if it came from `origin` (tests).
ProfileFile parse_profile_text(const std::string& text, const std::string& origin);
// One profile from a JSON object of the same keys as a YAML profile (the Python API's
// config dict), checked against the same table with the same messages; `origin` names it
// in them (e.g. "<dict>"). Values that are objects, arrays or null are refused.
Profile profile_from_json(const std::string& name, const nlohmann::json& values, const std::string& origin);
// Applies the lookup order above; explicit_path is --config (may be empty).
ProfileFile find_profile_file(const std::string& explicit_path);
// Applies the selection order above. Throws NotFoundError listing the known profiles.
Profile select_profile(const ProfileFile& file, const std::string& explicit_name);

// The local store's default path: $XDG_DATA_HOME/vstash/local.db (~/.local/share/vstash/local.db).
std::string default_local_path();
// The known backend types, in display order (profile_schema()'s).
std::vector<std::string> profile_types();

}  // namespace vstash
