// SPDX-License-Identifier: MIT
// Qdrant's distributed-collection profile keys: checked once, sent where the spec puts them.
#include "backends/qdrant/qdrantdistribution.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

#include "src/errors.hpp"
#include "src/profile.hpp"

namespace vstash::backends::qdrant {

namespace {

// The spec's uint32 minimum 1 (CreateCollection.shard_number, replication_factor, ...).
constexpr int64_t k_max_uint32 = 4294967295;
constexpr std::array<std::string_view, 3> k_read_consistency = {"majority", "quorum", "all"};
constexpr std::array<std::string_view, 3> k_write_ordering = {"weak", "medium", "strong"};

UsageError bad_key(const Profile& p, std::string_view key, const std::string& what) {
  return UsageError(fmt::format("profile \"{}\" ({}): key \"{}\": {}", p.name(), p.source(), key, what));
}

std::optional<int64_t> positive(const Profile& p, const char* key) {
  if (!p.has(key)) {
    return std::nullopt;
  }
  const int64_t v = p.get_int(key);
  if (v < 1 || v > k_max_uint32) {
    throw bad_key(p, key, fmt::format("{} is outside 1..{}", v, k_max_uint32));
  }
  return v;
}

bool one_of(std::string_view v, const std::array<std::string_view, 3>& allowed) {
  return std::find(allowed.begin(), allowed.end(), v) != allowed.end();
}

// ReadConsistency: an integer of at least 1, or majority | quorum | all.
std::string read_consistency(const Profile& p) {
  if (!p.has("consistency")) {
    return "";
  }
  const std::string v = p.get_string("consistency");
  const bool digits =
      !v.empty() && v.size() <= 9 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
  if ((digits && std::stoll(v) >= 1) || one_of(v, k_read_consistency)) {
    return v;
  }
  throw bad_key(p, "consistency", fmt::format("\"{}\" is not a replica count (1 or more), majority, quorum or all", v));
}

std::string write_ordering(const Profile& p) {
  if (!p.has("ordering")) {
    return "";
  }
  const std::string v = p.get_string("ordering");
  if (!one_of(v, k_write_ordering)) {
    throw bad_key(p, "ordering", fmt::format("\"{}\" is not weak, medium or strong", v));
  }
  return v;
}

// `shard_key: auto` (the dataset's name is its shard key) turns custom sharding on;
// `shard_collection` names the shared collections, by default one per dimension and metric.
std::string shard_collection(const Profile& p) {
  if (!p.has("shard_key")) {
    if (p.has("shard_collection")) {
      throw bad_key(p, "shard_collection", "needs shard_key: auto");
    }
    return "";
  }
  if (p.get_string("shard_key") != "auto") {
    throw bad_key(p, "shard_key",
                  fmt::format("\"{}\" is not auto (the dataset name is the shard key)", p.get_string("shard_key")));
  }
  const std::string name = p.get_string("shard_collection", "vstash-{dimension}-{metric}");
  const bool bad_char = std::any_of(name.begin(), name.end(), [](char c) {
    return std::string_view("<>:\"/\\|?*").find(c) != std::string_view::npos || c == '\0' || c == '\x1f';
  });
  if (name.empty() || name.size() > 200 || bad_char || name.rfind("__vstash_", 0) == 0) {
    throw bad_key(p, "shard_collection", fmt::format("\"{}\" is not a qdrant collection name", name));
  }
  return name;
}

// What follows "/collections/<name>" in a path without its query string ("/points/scroll"),
// or "" for a path that is not under a collection. The name is escaped, so has no '/'.
std::string_view operation_of(std::string_view bare) {
  constexpr std::string_view k_prefix = "/collections/";
  if (bare.substr(0, k_prefix.size()) != k_prefix) {
    return {};
  }
  const size_t slash = bare.find('/', k_prefix.size());
  return slash == std::string_view::npos ? std::string_view() : bare.substr(slash);
}

}  // namespace

Distribution distribution_from(const Profile& profile) {
  Distribution d;
  d.shard_number = positive(profile, "shard_number");
  d.replication_factor = positive(profile, "replication_factor");
  d.write_consistency_factor = positive(profile, "write_consistency_factor");
  if (d.write_consistency_factor && *d.write_consistency_factor > d.replication_factor.value_or(1)) {
    throw bad_key(profile, "write_consistency_factor",
                  fmt::format("{} is more than the replication_factor, {}", *d.write_consistency_factor,
                              d.replication_factor.value_or(1)));
  }
  if (profile.has("on_disk")) {
    d.on_disk = profile.get_bool("on_disk", false);
  }
  d.consistency = read_consistency(profile);
  d.ordering = write_ordering(profile);
  d.shard_collection = shard_collection(profile);
  return d;
}

void add_collection_params(const Distribution& d, json& body) {
  if (d.shard_number) {
    body["shard_number"] = *d.shard_number;
  }
  if (d.replication_factor) {
    body["replication_factor"] = *d.replication_factor;
  }
  if (d.write_consistency_factor) {
    body["write_consistency_factor"] = *d.write_consistency_factor;
  }
  if (d.on_disk) {
    body["vectors"]["on_disk"] = *d.on_disk;
  }
}

std::string with_request_params(const Distribution& d, const std::string& method, const std::string& path) {
  const size_t q = path.find('?');
  const std::string_view op = operation_of(std::string_view(path).substr(0, q));
  if (op.substr(0, 7) != "/points" || (method != "POST" && method != "PUT")) {
    return path;
  }
  const bool read = method == "POST" && (op == "/points" || op == "/points/scroll" || op == "/points/count" ||
                                         op == "/points/query" || op == "/points/search");
  const std::string& value = read ? d.consistency : d.ordering;
  if (value.empty()) {
    return path;
  }
  // Both values are checked words or digits: nothing to escape.
  return fmt::format("{}{}{}={}", path, q == std::string::npos ? '?' : '&', read ? "consistency" : "ordering", value);
}

}  // namespace vstash::backends::qdrant
