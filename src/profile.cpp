// SPDX-License-Identifier: MIT
#include "src/profile.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>
#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "src/errors.hpp"
#include "src/io/untrusted.hpp"

namespace vstash {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const ProfileKey* find_in(const std::vector<ProfileKey>& keys, std::string_view name) {
  for (const auto& k : keys) {
    if (k.name == name) {
      return &k;
    }
  }
  return nullptr;
}

const BackendKeys* find_type(std::string_view type) {
  for (const auto& b : profile_schema().backends) {
    if (b.type == type) {
      return &b;
    }
  }
  return nullptr;
}

// The key as `type` declares it (or as every type does); null if that type has no such key.
const ProfileKey* key_of_type(std::string_view name, std::string_view type) {
  if (const ProfileKey* k = find_in(profile_schema().common, name)) {
    return k;
  }
  const BackendKeys* b = find_type(type);
  return b ? find_in(b->keys, name) : nullptr;
}

// The key as any type declares it; null if no type knows it.
const ProfileKey* find_key(std::string_view name) {
  if (const ProfileKey* k = find_in(profile_schema().common, name)) {
    return k;
  }
  for (const auto& b : profile_schema().backends) {
    if (const ProfileKey* k = find_in(b.keys, name)) {
      return k;
    }
  }
  return nullptr;
}

// Every secret key name of every type, once each.
std::vector<std::string> secret_keys() {
  std::vector<std::string> out;
  auto add = [&](const std::vector<ProfileKey>& keys) {
    for (const auto& k : keys) {
      if (k.secret && std::find(out.begin(), out.end(), k.name) == out.end()) {
        out.emplace_back(k.name);
      }
    }
  };
  add(profile_schema().common);
  for (const auto& b : profile_schema().backends) {
    add(b.keys);
  }
  return out;
}

std::string where(const std::string& origin, const YAML::Node& node) {
  const auto mark = node.Mark();
  return mark.line >= 0 ? fmt::format("{}:{}", origin, mark.line + 1) : origin;
}

// A mapping key as text. YAML allows any node as a key (`[a, b]: 1`, `? {x: 1}`); a profile
// file's keys are names, so anything else is refused (converting it would throw yaml-cpp's
// TypedBadConversion, which names nothing).
std::string key_text(const std::string& origin, const YAML::Node& key) {
  if (!key.IsScalar()) {
    throw UsageError(fmt::format("{}: a key must be a plain name, not a list or mapping", where(origin, key)));
  }
  return key.Scalar();
}

// Expands ${VAR} from the environment. An unset variable is an error: a silently empty
// password or host is worse than a clear message.
std::string expand_env(const std::string& value, const std::string& at, const std::string& key) {
  std::string out;
  size_t i = 0;
  while (i < value.size()) {
    if (value.compare(i, 2, "${") == 0) {
      const size_t end = value.find('}', i + 2);
      if (end == std::string::npos) {
        throw UsageError(fmt::format("{}: key \"{}\": unterminated \"${{\"", at, key));
      }
      const std::string var = value.substr(i + 2, end - i - 2);
      const char* v = std::getenv(var.c_str());
      if (!v) {
        throw UsageError(fmt::format("{}: key \"{}\": environment variable {} is not set", at, key, var));
      }
      out += v;
      i = end + 1;
    } else {
      out += value[i++];
    }
  }
  return out;
}

json convert_value(const ProfileKey& info, const std::string& text, const std::string& at) {
  const std::string key(info.name);
  auto bad = [&](std::string_view want) {
    return UsageError(fmt::format("{}: key \"{}\": expected {}, got \"{}\"", at, key, want, text));
  };
  switch (info.type) {
    case KeyType::string:
      return text;
    case KeyType::integer: {
      size_t pos = 0;
      long long v = 0;
      try {
        v = std::stoll(text, &pos);
      } catch (const std::exception&) {
        throw bad("an integer");
      }
      if (pos != text.size()) {
        throw bad("an integer");
      }
      return v;
    }
    case KeyType::number: {
      size_t pos = 0;
      double v = 0;
      try {
        v = std::stod(text, &pos);
      } catch (const std::exception&) {
        throw bad("a number");
      }
      if (pos != text.size()) {
        throw bad("a number");
      }
      return v;
    }
    case KeyType::boolean:
      if (text == "true" || text == "yes" || text == "on") {
        return true;
      }
      if (text == "false" || text == "no" || text == "off") {
        return false;
      }
      throw bad("true or false");
  }
  return text;
}

Profile parse_profile(const std::string& name, const YAML::Node& node, const std::string& origin) {
  const std::string at = where(origin, node);
  if (!node.IsMap()) {
    throw UsageError(fmt::format("{}: profile \"{}\": expected a mapping of keys", at, name));
  }
  const YAML::Node type_node = node["type"];
  if (!type_node || !type_node.IsScalar()) {
    throw UsageError(fmt::format("{}: profile \"{}\": missing key \"type\" (one of {})", at, name,
                                 fmt::join(profile_types(), ", ")));
  }
  const std::string type = type_node.Scalar();
  if (!find_type(type)) {
    throw UsageError(fmt::format("{}: profile \"{}\": unknown type \"{}\" (one of {})", where(origin, type_node), name,
                                 type, fmt::join(profile_types(), ", ")));
  }
  json values = json::object();
  for (const auto& kv : node) {
    const std::string key = key_text(origin, kv.first);
    const std::string kat = where(origin, kv.first);
    const ProfileKey* info = key_of_type(key, type);
    if (!info && !find_key(key)) {
      throw UsageError(fmt::format("{}: profile \"{}\": unknown key \"{}\"", kat, name, key));
    }
    if (!info) {
      throw UsageError(
          fmt::format("{}: profile \"{}\": key \"{}\" does not apply to type \"{}\"", kat, name, key, type));
    }
    // A list of scalars for a text key (redis `nodes: [a:1, b:2]`) is kept comma-joined.
    const bool list = kv.second.IsSequence() && info->type == KeyType::string &&
                      std::all_of(kv.second.begin(), kv.second.end(), [](const YAML::Node& n) { return n.IsScalar(); });
    if (!kv.second.IsScalar() && !list) {
      throw UsageError(fmt::format("{}: profile \"{}\": key \"{}\" must be a single value", kat, name, key));
    }
    std::string text = list ? std::string() : kv.second.Scalar();
    for (size_t i = 0; list && i < kv.second.size(); ++i) {
      text += (i == 0 ? "" : ",") + kv.second[i].Scalar();
    }
    values[key] = convert_value(*info, expand_env(text, kat, key), kat);
  }
  return Profile(name, type, std::move(values), origin);
}

}  // namespace

Profile::Profile(std::string name, std::string type, json values, std::string source)
    : m_name(std::move(name)), m_type(std::move(type)), m_values(std::move(values)), m_source(std::move(source)) {
  m_values["type"] = m_type;
}

bool Profile::has(const std::string& key) const { return m_values.contains(key); }

namespace {
[[noreturn]] void missing(const Profile& p, const std::string& key) {
  throw UsageError(fmt::format("profile \"{}\" ({}): missing key \"{}\"", p.name(), p.source(), key));
}
}  // namespace

std::string Profile::get_string(const std::string& key) const {
  if (!has(key)) {
    missing(*this, key);
  }
  const auto& v = m_values.at(key);
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string Profile::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

int64_t Profile::get_int(const std::string& key) const {
  if (!has(key)) {
    missing(*this, key);
  }
  const auto& v = m_values.at(key);
  if (!v.is_number_integer()) {
    throw UsageError(fmt::format("profile \"{}\" ({}): key \"{}\": expected an integer", m_name, m_source, key));
  }
  return v.get<int64_t>();
}

int64_t Profile::get_int(const std::string& key, int64_t fallback) const { return has(key) ? get_int(key) : fallback; }

double Profile::get_double(const std::string& key, double fallback) const {
  if (!has(key)) {
    return fallback;
  }
  const auto& v = m_values.at(key);
  if (!v.is_number()) {
    throw UsageError(fmt::format("profile \"{}\" ({}): key \"{}\": expected a number", m_name, m_source, key));
  }
  return v.get<double>();
}

bool Profile::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) {
    return fallback;
  }
  const auto& v = m_values.at(key);
  if (!v.is_boolean()) {
    throw UsageError(fmt::format("profile \"{}\" ({}): key \"{}\": expected true or false", m_name, m_source, key));
  }
  return v.get<bool>();
}

std::string Profile::default_dataset() const {
  for (const char* key : {"dataset", "index_name", "collection_name", "table_name"}) {
    if (has(key)) {
      return get_string(key);
    }
  }
  return "default";
}

json Profile::redacted() const {
  json out = m_values;
  for (const auto& key : secret_keys()) {
    if (out.contains(key)) {
      out[key] = "***";
    }
  }
  return out;
}

std::vector<std::string> Profile::secrets() const {
  std::vector<std::string> out;
  for (const auto& key : secret_keys()) {
    if (has(key) && !get_string(key).empty()) {
      out.push_back(get_string(key));
    }
  }
  return out;
}

void Profile::set(const std::string& key, const json& value) {
  const ProfileKey* info = find_key(key);
  if (!info) {
    throw UsageError(fmt::format("profile \"{}\": unknown key \"{}\"", m_name, key));
  }
  const bool ok = (info->type == KeyType::string && value.is_string()) ||
                  (info->type == KeyType::integer && value.is_number_integer()) ||
                  (info->type == KeyType::number && value.is_number()) ||
                  (info->type == KeyType::boolean && value.is_boolean());
  if (!ok) {
    throw UsageError(fmt::format("profile \"{}\": key \"{}\": wrong type {}", m_name, key, value.dump()));
  }
  m_values[key] = value;
}

ProfileFile parse_profile_text(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own guard against a stack overflow; its message would only say "bad file".
    throw UsageError(
        fmt::format("{}:{}: YAML nested deeper than {} levels (the limit)", origin, e.mark.line + 1, e.depth() - 1));
  } catch (const YAML::Exception& e) {
    // yaml-cpp's what() repeats the position; build one clean line from mark + msg.
    throw UsageError(fmt::format("{}:{}: malformed YAML: {}", origin, e.mark.line + 1, e.msg));
  }
  ProfileFile file;
  file.path = origin;
  if (root.IsNull()) {
    return file;
  }
  if (!root.IsMap()) {
    throw UsageError(fmt::format("{}: expected a mapping with \"profiles:\"", where(origin, root)));
  }
  for (const auto& kv : root) {
    const std::string key = key_text(origin, kv.first);
    if (key == "default") {
      if (!kv.second.IsScalar()) {
        throw UsageError(fmt::format("{}: \"default\" must name a profile", where(origin, kv.second)));
      }
      file.default_profile = kv.second.Scalar();
    } else if (key == "profiles") {
      if (!kv.second.IsMap()) {
        throw UsageError(fmt::format("{}: \"profiles\" must be a mapping of name: settings", where(origin, kv.second)));
      }
      for (const auto& p : kv.second) {
        const std::string name = key_text(origin, p.first);
        file.profiles.insert_or_assign(name, parse_profile(name, p.second, origin));
      }
    } else {
      throw UsageError(
          fmt::format("{}: unknown key \"{}\" (expected \"default\" or \"profiles\")", where(origin, kv.first), key));
    }
  }
  if (file.default_profile && !file.profiles.count(*file.default_profile) && *file.default_profile != "local") {
    throw UsageError(fmt::format("{}: default profile \"{}\" is not defined", origin, *file.default_profile));
  }
  return file;
}

Profile profile_from_json(const std::string& name, const json& values, const std::string& origin) {
  if (!values.is_object()) {
    throw UsageError(fmt::format("{}: profile \"{}\": expected a mapping of keys", origin, name));
  }
  // Rendered as the YAML scalars they stand for, then checked by parse_profile itself.
  YAML::Node node(YAML::NodeType::Map);
  for (const auto& [key, value] : values.items()) {
    if (value.is_object() || value.is_array() || value.is_null()) {
      throw UsageError(fmt::format("{}: profile \"{}\": key \"{}\" must be a single value", origin, name, key));
    }
    node[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  return parse_profile(name, node, origin);
}

ProfileFile load_profile_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw UsageError(fmt::format("{}: {}", path,
                                 fs::exists(path, ec) ? "config file is not a regular file" : "config file not found"));
  }
  const std::string text = io::read_small_file(path, io::k_max_small_input_bytes, "config file");
  return parse_profile_text(text, path);
}

namespace {
std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}
std::string home_dir() { return env_or("HOME", "/root"); }
}  // namespace

ProfileFile find_profile_file(const std::string& explicit_path) {
  if (!explicit_path.empty()) {
    return load_profile_file(explicit_path);
  }
  if (const char* env = std::getenv("VSTASH_CONFIG"); env && *env) {
    return load_profile_file(env);
  }
  const std::vector<std::string> candidates = {
      "vstash.yaml",
      env_or("XDG_CONFIG_HOME", home_dir() + "/.config") + "/vstash/config.yaml",
      "/etc/vstash/config.yaml",
  };
  std::error_code ec;
  for (const auto& c : candidates) {
    if (fs::exists(c, ec)) {
      return load_profile_file(c);
    }
  }
  return ProfileFile{};
}

Profile select_profile(const ProfileFile& file, const std::string& explicit_name) {
  std::string name = explicit_name;
  if (name.empty()) {
    name = env_or("VSTASH_PROFILE", "");
  }
  if (name.empty() && file.default_profile) {
    name = *file.default_profile;
  }
  if (name.empty()) {
    name = "local";
  }
  if (auto it = file.profiles.find(name); it != file.profiles.end()) {
    return it->second;
  }
  if (name == "local") {
    return Profile("local", "local", json{{"path", default_local_path()}}, "<built-in>");
  }
  std::vector<std::string> known;
  for (const auto& [n, _] : file.profiles) {
    known.push_back(n);
  }
  const std::string origin = file.path.empty() ? "no config file found" : file.path;
  throw NotFoundError(fmt::format("unknown profile \"{}\" ({}; known: {})", name, origin,
                                  known.empty() ? std::string("local") : fmt::format("{}", fmt::join(known, ", "))));
}

std::string default_local_path() { return env_or("XDG_DATA_HOME", home_dir() + "/.local/share") + "/vstash/local.db"; }

std::vector<std::string> profile_types() {
  std::vector<std::string> out;
  for (const auto& b : profile_schema().backends) {
    out.emplace_back(b.type);
  }
  return out;
}

}  // namespace vstash
