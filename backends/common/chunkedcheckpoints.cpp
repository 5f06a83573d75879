// SPDX-License-Identifier: MIT
#include "backends/common/chunkedcheckpoints.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <span>
#include <thread>

#include "backends/common/rowcodec.hpp"
#include "src/errors.hpp"
#include "src/util/base64.hpp"

namespace vstash::backends::chunked {

namespace {

std::string chunk_key(const std::string& model, int64_t epoch, const std::string& token, size_t a, size_t c) {
  return fmt::format("c:{}@{}:{}:{}:{}", model, epoch, token, a, c);
}

std::string fresh_token() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

// A field kept as JSON text (older Qdrant manifests hold it as JSON itself).
json structured(const json& md, const char* field, const json& fallback) {
  const auto it = md.find(field);
  if (it == md.end() || it->is_null()) {
    return fallback;
  }
  return it->is_string() ? json::parse(it->get<std::string>()) : *it;
}

// Numbers may come back as floats (Pinecone keeps every number as a double).
int64_t integer(const json& md, const char* field) {
  const auto it = md.find(field);
  if (it == md.end() || !it->is_number()) {
    return 0;
  }
  return it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
}

std::vector<std::string> chunk_keys(const json& md) {
  std::vector<std::string> keys;
  const std::string model = md.value("model", std::string());
  const int64_t epoch = integer(md, "epoch");
  const std::string token = md.value("token", std::string());
  const json arrays = structured(md, "arrays", json::array());
  for (size_t a = 0; a < arrays.size(); ++a) {
    for (size_t c = 0; c < arrays[a].value("chunks", size_t{0}); ++c) {
      keys.push_back(chunk_key(model, epoch, token, a, c));
    }
  }
  return keys;
}

CheckpointInfo info_of(const json& md) {
  CheckpointInfo info;
  info.model = md.value("model", std::string());
  info.epoch = integer(md, "epoch");
  info.path = checkpoint_path(info.model, info.epoch);
  info.metrics = metrics_from_json(structured(md, "metrics", json::object()));
  info.bytes = integer(md, "bytes");
  info.created_at = md.value("created_at", std::string());
  return info;
}

// Manifests of model (all when empty), by model then epoch.
std::vector<json> sorted_manifests(RecordStore& store, const std::string& model) {
  std::vector<json> out = store.manifests(model);
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return std::pair(a.value("model", std::string()), integer(a, "epoch")) <
           std::pair(b.value("model", std::string()), integer(b, "epoch"));
  });
  return out;
}

// The manifest a reference names, resolving @latest; nullopt when absent.
std::optional<json> resolve(RecordStore& store, const std::string& path) {
  const CheckpointRef ref = CheckpointRef::parse(path);
  if (!ref.epoch) {
    auto all = sorted_manifests(store, ref.model);
    return all.empty() ? std::nullopt : std::optional(all.back());
  }
  const std::string key = manifest_key(ref.model, *ref.epoch);
  auto found = store.get({key});
  const auto it = found.find(key);
  return it == found.end() ? std::nullopt : std::optional(it->second);
}

using Clock = std::chrono::steady_clock;

constexpr int64_t k_claim_stale_ms = 10 * 60 * 1000;  // a claim not renewed this long is a crashed saver's
constexpr auto k_claim_renew = std::chrono::seconds(60);
constexpr auto k_choosing_wait = std::chrono::seconds(30);  // how long a rival may take to pick its ticket
constexpr size_t k_records_per_put = 32;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string claim_key(const std::string& model, int64_t epoch, const std::string& token) {
  return fmt::format("k:{}@{}:{}", model, epoch, token);
}

// One saver's claim on MODEL@EPOCH (the header's bakery protocol); removed when it ends.
class Claim {
 public:
  Claim(RecordStore& store, const Checkpoint& cp, std::string token)
      : m_store(store), m_cp(cp), m_token(std::move(token)), m_key(claim_key(cp.model, cp.epoch, m_token)) {}
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  ~Claim() {
    if (!m_written) {
      return;
    }
    try {
      m_store.remove({m_key});
    } catch (const std::exception&) {
      // A claim left behind is ignored once stale; the save's own outcome stands.
    }
  }

  // Takes a ticket and waits for rivals still choosing theirs. Returns false when a rival
  // holds a lower ticket; throws RetryableError when one stays choosing too long.
  bool win() {
    write(0);
    int64_t highest = 0;
    for (const auto& c : rivals()) {
      highest = std::max(highest, integer(c, "ticket"));
    }
    m_ticket = highest + 1;
    write(m_ticket);
    const auto deadline = Clock::now() + k_choosing_wait;
    auto pause = std::chrono::milliseconds(10);
    for (;;) {
      bool choosing = false;
      for (const auto& c : rivals()) {
        const int64_t t = integer(c, "ticket");
        if (t != 0 && std::pair(t, c.value("token", std::string())) < std::pair(m_ticket, m_token)) {
          return false;
        }
        choosing = choosing || t == 0;
      }
      if (!choosing) {
        return true;
      }
      if (Clock::now() > deadline) {
        throw RetryableError(
            fmt::format("{}: saving checkpoint \"{}\": another process has been claiming it for "
                        "{} s; retry",
                        m_store.location, checkpoint_path(m_cp.model, m_cp.epoch),
                        std::chrono::duration_cast<std::chrono::seconds>(k_choosing_wait).count()));
      }
      std::this_thread::sleep_for(pause);  // polling the rivals' claims, bounded by the deadline
      pause = std::min(pause * 2, std::chrono::milliseconds(200));
    }
  }

  // Renews the claim's time when it is due, so a long upload is not taken for a crash.
  void renew() {
    if (Clock::now() - m_renewed >= k_claim_renew) {
      write(m_ticket);
    }
  }

 private:
  void write(int64_t ticket) {
    m_written = true;
    m_store.put({{m_key, json{{"kind", "claim"},
                              {"model", m_cp.model},
                              {"epoch", m_cp.epoch},
                              {"token", m_token},
                              {"ticket", ticket},
                              {"at", wall_ms()}}}});
    m_store.settle();
    m_renewed = Clock::now();
  }

  // The other live claims on the same epoch.
  std::vector<json> rivals() {
    std::vector<json> out;
    const int64_t oldest = wall_ms() - k_claim_stale_ms;
    for (auto& c : m_store.claims(m_cp.model)) {
      if (integer(c, "epoch") == m_cp.epoch && c.value("token", std::string()) != m_token &&
          integer(c, "at") >= oldest) {
        out.push_back(std::move(c));
      }
    }
    return out;
  }

  RecordStore& m_store;
  const Checkpoint& m_cp;
  std::string m_token;
  std::string m_key;
  int64_t m_ticket = 0;
  bool m_written = false;
  Clock::time_point m_renewed = Clock::now();
};

}  // namespace

std::string manifest_key(const std::string& model, int64_t epoch) { return fmt::format("m:{}@{}", model, epoch); }

std::string save(RecordStore& store, const Checkpoint& cp) {
  validate_model_name(cp.model);
  if (cp.epoch < 0) {
    throw UsageError(fmt::format("checkpoint \"{}\": epoch {} is negative", cp.model, cp.epoch));
  }
  const std::string token = fresh_token();
  std::vector<std::pair<std::string, json>> chunks;
  json arrays = json::array();
  int64_t bytes = 0;
  size_t a = 0;
  for (const auto& [name, array] : cp.arrays) {
    const std::string raw = encode_array(array);
    const size_t n = std::max<size_t>(1, (raw.size() + store.chunk_bytes - 1) / store.chunk_bytes);
    for (size_t c = 0; c < n; ++c) {
      const std::string_view part = std::string_view(raw).substr(c * store.chunk_bytes, store.chunk_bytes);
      chunks.emplace_back(chunk_key(cp.model, cp.epoch, token, a, c),
                          json{{"kind", "chunk"},
                               {"model", cp.model},
                               {"blob", util::base64_encode(std::as_bytes(std::span(part.data(), part.size())))}});
    }
    arrays.push_back({{"name", name}, {"chunks", n}, {"bytes", raw.size()}});
    bytes += static_cast<int64_t>(raw.size());
    ++a;
  }
  const std::string key = manifest_key(cp.model, cp.epoch);
  const json manifest = {{"kind", "manifest"},
                         {"model", cp.model},
                         {"epoch", cp.epoch},
                         {"token", token},
                         {"arrays", arrays.dump()},
                         {"metrics", metrics_to_json(cp.metrics).dump()},
                         {"metadata", (cp.metadata.is_null() ? json::object() : cp.metadata).dump()},
                         {"created_at", now_rfc3339()},
                         {"bytes", bytes}};
  const std::string path = checkpoint_path(cp.model, cp.epoch);
  auto old = store.get({key});
  std::optional<Claim> claim;
  if (!cp.overwrite) {
    if (old.count(key) != 0) {
      throw_checkpoint_exists(store.location, path);
    }
    claim.emplace(store, cp, token);
    if (!claim->win()) {
      throw ConflictError(
          fmt::format("{}: checkpoint \"{}\" is being saved by another process (use --overwrite to "
                      "replace it)",
                      store.location, path));
    }
    // Read after the claims: a winner removes its claim only once its manifest is stored.
    old = store.get({key});
    if (old.count(key) != 0) {
      throw_checkpoint_exists(store.location, path);
    }
  }
  for (size_t i = 0; i < chunks.size(); i += k_records_per_put) {
    const auto first = chunks.begin() + static_cast<std::ptrdiff_t>(i);
    store.put({first, first + static_cast<std::ptrdiff_t>(std::min(k_records_per_put, chunks.size() - i))});
    if (claim) {
      claim->renew();
    }
  }
  store.put({{key, manifest}});
  if (const auto it = old.find(key); it != old.end() && it->second.value("token", std::string()) != token) {
    // The replaced checkpoint's chunks: unreachable now that the manifest names the new token.
    if (const auto stale = chunk_keys(it->second); !stale.empty()) {
      store.remove(stale);
    }
  }
  store.settle();
  return path;
}

Checkpoint load(RecordStore& store, const std::string& path) {
  const auto md = resolve(store, path);
  if (!md) {
    throw NotFoundError(fmt::format("{}: checkpoint \"{}\" does not exist", store.location, path));
  }
  const CheckpointInfo info = info_of(*md);
  Checkpoint cp;
  cp.model = info.model;
  cp.epoch = info.epoch;
  cp.metrics = info.metrics;
  cp.created_at = info.created_at;
  cp.metadata = structured(*md, "metadata", json::object());
  const auto chunks = store.get(chunk_keys(*md));
  const json arrays = structured(*md, "arrays", json::array());
  const std::string token = md->value("token", std::string());
  for (size_t a = 0; a < arrays.size(); ++a) {
    std::string raw;
    for (size_t c = 0; c < arrays[a].value("chunks", size_t{0}); ++c) {
      const auto it = chunks.find(chunk_key(cp.model, cp.epoch, token, a, c));
      if (it == chunks.end()) {
        throw RetryableError(
            fmt::format("{}: checkpoint \"{}\": chunk {} of \"{}\" is not visible yet or was "
                        "replaced while reading; retry",
                        store.location, info.path, c, arrays[a].value("name", std::string())));
      }
      const auto part = util::base64_decode(it->second.value("blob", std::string()));
      raw.append(reinterpret_cast<const char*>(part.data()), part.size());
    }
    cp.arrays.emplace(arrays[a].value("name", std::string()), decode_array(raw));
  }
  return cp;
}

std::vector<CheckpointInfo> list(RecordStore& store, const std::string& model) {
  if (!model.empty()) {
    validate_model_name(model);
  }
  std::vector<CheckpointInfo> out;
  for (const auto& md : sorted_manifests(store, model)) {
    out.push_back(info_of(md));
  }
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].latest = i + 1 == out.size() || out[i + 1].model != out[i].model;
  }
  return out;
}

bool remove(RecordStore& store, const std::string& path) {
  const auto md = resolve(store, path);
  if (!md) {
    return false;
  }
  // The manifest goes first: from then on the checkpoint is gone for readers.
  store.remove({manifest_key(md->value("model", std::string()), integer(*md, "epoch"))});
  if (const auto keys = chunk_keys(*md); !keys.empty()) {
    store.remove(keys);
  }
  store.settle();
  return true;
}

}  // namespace vstash::backends::chunked
