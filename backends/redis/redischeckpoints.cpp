// SPDX-License-Identifier: MIT
// Checkpoints in Redis (layout in redischeckpoints.hpp).
#include "backends/redis/redischeckpoints.hpp"

#include <fmt/format.h>
#include <algorithm>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#include "backends/common/rowcodec.hpp"
#include "src/errors.hpp"

namespace vstash::backends::redis {

namespace {
// Moves latest forward only: concurrent savers of epochs 3 and 5 leave 5, in any order.
constexpr std::string_view k_cas_latest = R"lua(
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return redis.call('GET', KEYS[1])
)lua";

// Deletes one epoch; if it was latest, latest falls back to the next lower saved epoch.
constexpr std::string_view k_delete_epoch = R"lua(
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
local cur = redis.call('GET', KEYS[3])
if cur and tonumber(cur) == tonumber(ARGV[1]) then
  local top = redis.call('ZREVRANGE', KEYS[2], 0, 0)
  if top[1] then redis.call('SET', KEYS[3], top[1], 'KEEPTTL') else redis.call('DEL', KEYS[3]) end
end
return 1
)lua";

struct ModelKeys {
  std::string base;
  explicit ModelKeys(const StoreConfig& cfg, const std::string& model)
      : base(fmt::format("{}ckpt:{{{}}}:", cfg.prefix, key_escape(model))) {}
  std::string epoch(int64_t e) const { return base + std::to_string(e); }
  std::string epochs() const { return base + "epochs"; }
  std::string latest() const { return base + "latest"; }
};

std::string models_key(const StoreConfig& cfg) { return cfg.prefix + "models"; }

std::string expired(const std::string& path) { return fmt::format("checkpoint \"{}\": expired or not found", path); }
}  // namespace

std::string save_checkpoint(Connection& conn, const StoreConfig& cfg, const Checkpoint& ck) {
  validate_model_name(ck.model);
  if (ck.epoch < 0) {
    throw UsageError(fmt::format("checkpoint \"{}\": negative epoch", ck.model));
  }
  const ModelKeys k(cfg, ck.model);
  json manifest = {{"model", ck.model},
                   {"epoch", ck.epoch},
                   {"metrics", metrics_to_json(ck.metrics)},
                   {"metadata", ck.metadata},
                   {"created_at", now_rfc3339()}};
  std::vector<std::string> blobs;
  json names = json::array();
  int64_t bytes = 0;
  for (const auto& [name, array] : ck.arrays) {
    blobs.push_back(encode_array(array));
    names.push_back(name);
    bytes += static_cast<int64_t>(array.nbytes());
  }
  manifest["arrays"] = names;
  manifest["bytes"] = bytes;
  const std::string manifest_text = manifest.dump();
  const std::string key = k.epoch(ck.epoch);
  const std::string epoch = std::to_string(ck.epoch);
  const std::string ttl = std::to_string(cfg.ttl);

  // One MULTI: the hash is replaced whole, so a reader sees the old checkpoint or the new.
  std::vector<std::string> fields;
  fields.reserve(2 * blobs.size());
  for (const auto& name : names) {
    fields.push_back("array:" + name.get<std::string>());
  }
  std::vector<std::string_view> hset = {"HSET", key, "manifest", manifest_text};
  for (size_t i = 0; i < blobs.size(); ++i) {
    hset.push_back(fields[i]);
    hset.push_back(blobs[i]);
  }
  // Without overwrite the epoch's key is WATCHed from the existence check to the EXEC: a
  // concurrent saver's (or deleter's) write aborts this EXEC, and the check runs again, so
  // of two savers of a new epoch exactly one gets in.
  const std::string path = checkpoint_path(ck.model, ck.epoch);
  constexpr int k_attempts = 16;
  for (int attempt = 0; attempt < k_attempts; ++attempt) {
    if (!ck.overwrite) {
      conn.append({"WATCH", key});
      conn.append({"EXISTS", key});
      if (as_int(*conn.flush().back()) != 0) {
        conn.command({"UNWATCH"});
        throw_checkpoint_exists("redis " + conn.location(), path);
      }
    }
    conn.append({"MULTI"});
    conn.append({"DEL", key});
    conn.append(hset);
    append_expire(conn, cfg, key);
    conn.append({"ZADD", k.epochs(), epoch, epoch});
    append_expire(conn, cfg, k.epochs());
    conn.append({"SADD", models_key(cfg), ck.model});
    append_expire(conn, cfg, models_key(cfg));
    conn.append({"EVAL", k_cas_latest, "1", k.latest(), epoch, ttl});
    conn.append({"EXEC"});
    auto replies = conn.flush();
    const auto& exec = *replies.back();
    if (is_nil(exec)) {
      continue;  // the WATCHed key changed: check again
    }
    for (size_t i = 0; i < array_size(exec); ++i) {
      conn.check(element(exec, i));
    }
    return path;
  }
  throw RetryableError(
      fmt::format("redis {}: saving checkpoint \"{}\": the epoch's key kept changing under {} "
                  "attempts; retry",
                  conn.location(), path, k_attempts));
}

Checkpoint load_checkpoint(Connection& conn, const StoreConfig& cfg, const CheckpointRef& ref) {
  const ModelKeys k(cfg, ref.model);
  int64_t epoch = 0;
  if (ref.epoch) {
    epoch = *ref.epoch;
  } else {
    auto latest = conn.command({"GET", k.latest()});
    if (is_nil(*latest)) {
      throw NotFoundError(fmt::format("redis {}: {}", conn.location(), expired(ref.to_string())));
    }
    epoch = as_int(*latest);
  }
  const std::string path = checkpoint_path(ref.model, epoch);
  auto all = conn.command({"HGETALL", k.epoch(epoch)});
  std::map<std::string, std::string_view> fields;
  for (size_t i = 0; i + 1 < array_size(*all); i += 2) {
    fields[as_string(element(*all, i))] = as_view(element(*all, i + 1));
  }
  auto mit = fields.find("manifest");
  if (mit == fields.end()) {
    throw NotFoundError(
        fmt::format("redis {}: {}", conn.location(), expired(ref.epoch ? path : ref.to_string() + " (" + path + ")")));
  }
  const json manifest = json::parse(mit->second);
  Checkpoint ck;
  ck.model = ref.model;
  ck.epoch = epoch;
  ck.metrics = metrics_from_json(manifest.at("metrics"));
  ck.metadata = manifest.at("metadata");
  ck.created_at = manifest.at("created_at").get<std::string>();
  for (const auto& name : manifest.at("arrays")) {
    const auto n = name.get<std::string>();
    auto it = fields.find("array:" + n);
    if (it == fields.end()) {
      throw Error(fmt::format("redis {}: checkpoint \"{}\": array \"{}\" is missing", conn.location(), path, n));
    }
    ck.arrays.emplace(n, decode_array(it->second));
  }
  return ck;
}

std::vector<CheckpointInfo> list_checkpoints(Connection& conn, const StoreConfig& cfg, const std::string& model) {
  std::vector<std::string> models;
  if (!model.empty()) {
    validate_model_name(model);
    models.push_back(model);
  } else {
    models = string_array(*conn.command({"SMEMBERS", models_key(cfg)}));
  }
  std::sort(models.begin(), models.end());
  for (const auto& m : models) {
    const ModelKeys k(cfg, m);
    conn.append({"ZRANGE", k.epochs(), "0", "-1"});
    conn.append({"GET", k.latest()});
  }
  auto heads = conn.flush();
  std::vector<std::pair<std::string, int64_t>> wanted;
  std::vector<int64_t> latest(models.size(), -1);
  for (size_t i = 0; i < models.size(); ++i) {
    const ModelKeys k(cfg, models[i]);
    for (const auto& e : string_array(*heads[2 * i])) {
      wanted.emplace_back(models[i], std::stoll(e));
      conn.append({"HGET", k.epoch(wanted.back().second), "manifest"});
    }
    if (!is_nil(*heads[2 * i + 1])) {
      latest[i] = as_int(*heads[2 * i + 1]);
    }
  }
  auto manifests = conn.flush();
  std::vector<CheckpointInfo> out;
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (is_nil(*manifests[i])) {
      continue;  // expired: the sorted set outlives a checkpoint saved earlier
    }
    const json m = json::parse(as_view(*manifests[i]));
    CheckpointInfo info;
    info.model = wanted[i].first;
    info.epoch = wanted[i].second;
    info.path = checkpoint_path(info.model, info.epoch);
    info.metrics = metrics_from_json(m.at("metrics"));
    info.bytes = m.value("bytes", int64_t{0});
    info.created_at = m.value("created_at", "");
    const auto mi = static_cast<size_t>(std::find(models.begin(), models.end(), info.model) - models.begin());
    info.latest = latest[mi] == info.epoch;
    out.push_back(std::move(info));
  }
  std::stable_sort(out.begin(), out.end(), [](const CheckpointInfo& a, const CheckpointInfo& b) {
    return a.model != b.model ? a.model < b.model : a.epoch < b.epoch;
  });
  return out;
}

bool delete_checkpoint(Connection& conn, const StoreConfig& cfg, const CheckpointRef& ref) {
  const ModelKeys k(cfg, ref.model);
  int64_t epoch = 0;
  if (ref.epoch) {
    epoch = *ref.epoch;
  } else {
    auto latest = conn.command({"GET", k.latest()});
    if (is_nil(*latest)) {
      return false;
    }
    epoch = as_int(*latest);
  }
  const std::string e = std::to_string(epoch);
  auto r = conn.command({"EVAL", k_delete_epoch, "3", k.epoch(epoch), k.epochs(), k.latest(), e});
  return as_int(*r) == 1;
}

std::map<std::string, int64_t> checkpoint_counts(Connection& conn, const StoreConfig& cfg) {
  std::map<std::string, int64_t> out;
  for (const auto& info : list_checkpoints(conn, cfg, "")) {
    ++out[info.model];
  }
  return out;
}

RedisCheckpoints::RedisCheckpoints(Connection& conn, const StoreConfig& cfg, std::mutex& mutex)
    : m_conn(conn), m_cfg(cfg), m_mutex(mutex) {}

std::string RedisCheckpoints::save_checkpoint(const Checkpoint& checkpoint) {
  std::lock_guard lock(m_mutex);
  return redis::save_checkpoint(m_conn, m_cfg, checkpoint);
}

Checkpoint RedisCheckpoints::load_checkpoint(const std::string& path) {
  std::lock_guard lock(m_mutex);
  return redis::load_checkpoint(m_conn, m_cfg, CheckpointRef::parse(path));
}

std::vector<CheckpointInfo> RedisCheckpoints::list_checkpoints(const std::string& model) {
  std::lock_guard lock(m_mutex);
  return redis::list_checkpoints(m_conn, m_cfg, model);
}

bool RedisCheckpoints::delete_checkpoint(const std::string& path) {
  std::lock_guard lock(m_mutex);
  return redis::delete_checkpoint(m_conn, m_cfg, CheckpointRef::parse(path));
}

}  // namespace vstash::backends::redis
