// SPDX-License-Identifier: MIT
// The cache tier decorator: read-through caching of dataset facts, batches (rows by
// position), queries and checkpoint loads.
//
// Cost of a hit: one round trip to the cache server and none to the primary, which is opened
// only when a read misses or a write comes (so a process served from the cache never pays
// the primary's connection set-up either). Shuffled batches are cached row by row (rows by
// position in one hash per dataset generation), so any permutation of a cached epoch hits.
//
// Invalidation: every cached value is filed under a scope (the primary's store plus one
// dataset, or plus one model) and that scope's generation token; every write through vstash
// is bracketed by Cache::begin_write/end_write (backends/redis/rediscache.hpp has the
// argument), so a reader in any process never reads a value that a completed write changed,
// nor a mix of rows from before and after a write. Writes made to the primary by other
// programs are not seen; cached values then live until the cache ttl.
#include "backends/redis/cachedbackend.hpp"

#include <fmt/format.h>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <type_traits>

#include "backends/common/cachecodec.hpp"
#include "backends/redis/rediscache.hpp"
#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"
#include "src/util/uuid.hpp"

namespace vstash::backends {

// Only what names the store (never timeouts, `dataset:` or `cache:`), so that every profile
// of one store shares one scope and a write through any of them invalidates the others.
std::string cache_scope(const Profile& primary_profile) {
  return fmt::format("{}:{}", primary_profile.type(),
                     util::sha1_hex(store_identity(primary_profile).dump()).substr(0, 16));
}

namespace {

using namespace cachecodec;

constexpr int64_t k_max_cache_memory_mb = int64_t{1} << 20;

// The tier is the primary's row store and checkpoint store with a cache in front (loads are
// cached, saves and deletes invalidate the model's scope); progress reports go straight through.
class CachedBackend final : public Backend, public CheckpointStore {
 public:
  CheckpointStore& checkpoints() override { return *this; }
  ProgressStore& progress() override { return primary().progress(); }
  CachedBackend(OpenBackend open_primary, std::string kind, const Profile& cache_profile, std::string scope,
                int64_t memory_bytes)
      : m_open(std::move(open_primary)),
        m_kind(std::move(kind)),
        m_cache(cache_profile, memory_bytes),
        m_scope(std::move(scope)) {}

  std::string kind() const override { return m_kind; }

  void create_dataset(const DatasetSpec& spec) override {
    write_ds(spec.name, [&] { primary().create_dataset(spec); });
  }
  std::optional<DatasetInfo> dataset_info(const std::string& d) override {
    // A missing dataset is not cached: it is the rare case, and creating it needs no token.
    std::optional<DatasetInfo> out;
    auto found = m_cache.lookup(ds_scope(d), "info");
    if (found && found->value) {
      try {
        out = decode_info(*found->value);
        ++m_hits;
        return out;
      } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): a corrupt entry is a miss
      }
    }
    ++m_misses;
    out = primary().dataset_info(d);
    if (found && out) {
      m_cache.store(ds_scope(d), found->generation, "info", encode_info(*out));
    }
    return out;
  }
  std::vector<DatasetInfo> list_datasets() override { return primary().list_datasets(); }
  bool drop_dataset(const std::string& d) override {
    return write_ds(d, [&] { return primary().drop_dataset(d); });
  }

  void write_rows(const std::string& d, const RowBatch& batch) override {
    write_ds(d, [&] { primary().write_rows(d, batch); });
  }
  RowBatch read_rows(const std::string& d, int64_t offset, int64_t count) override {
    return cached<RowBatch>(ds_scope(d), fmt::format("rows:{}:{}", offset, count), encode_batch, decode_batch,
                            [&] { return primary().read_rows(d, offset, count); });
  }
  RowBatch read_positions(const std::string& d, const std::vector<int64_t>& positions) override {
    if (positions.empty()) {
      return primary().read_positions(d, positions);
    }
    auto found = m_cache.lookup_rows(ds_scope(d), positions);
    if (!found) {
      ++m_misses;
      return primary().read_positions(d, positions);
    }
    std::vector<int64_t> missing;
    for (size_t i = 0; i < positions.size(); ++i) {
      if (!found->values[i]) {
        missing.push_back(positions[i]);
      }
    }
    if (missing.empty()) {
      try {
        RowBatch b = decode(found->values);
        ++m_hits;
        return b;
      } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): a corrupt entry is a miss
        ++m_misses;
        return primary().read_positions(d, positions);
      }
    }
    ++m_misses;
    if (missing.size() == positions.size()) {
      RowBatch b = primary().read_positions(d, positions);
      store_rows(d, found->generation, positions, b);
      return b;
    }
    // Only the misses from the primary; a short answer (positions past the end) is the
    // primary's to report, so the whole batch is then read from it.
    const RowBatch got = primary().read_positions(d, missing);
    if (got.size() != missing.size()) {
      return primary().read_positions(d, positions);
    }
    store_rows(d, found->generation, missing, got);
    for (size_t i = 0, k = 0; i < positions.size(); ++i) {
      if (!found->values[i]) {
        found->values[i] = encode_row(got, k++);
      }
    }
    try {
      return decode(found->values);
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): a corrupt entry: the primary's batch
    }
    return primary().read_positions(d, positions);
  }
  RowBatch fetch(const std::string& d, const std::vector<std::string>& ids) override { return primary().fetch(d, ids); }
  void update_row(const std::string& d, const std::string& id, const std::optional<Array>& sample,
                  const std::optional<json>& metadata) override {
    write_ds(d, [&] { primary().update_row(d, id, sample, metadata); });
  }
  int64_t delete_ids(const std::string& d, const std::vector<std::string>& ids) override {
    return write_ds(d, [&] { return primary().delete_ids(d, ids); });
  }
  int64_t delete_where(const std::string& d, const Filter& filter) override {
    return write_ds(d, [&] { return primary().delete_where(d, filter); });
  }
  int64_t count(const std::string& d, const Filter* filter) override { return primary().count(d, filter); }
  std::vector<QueryHit> query(const std::string& d, const std::vector<float>& vector,
                              const QueryOptions& options) override {
    json key = {{"k", options.top_k},
                {"values", options.include_values},
                {"metadata", options.include_metadata},
                {"filter", options.filter != nullptr ? options.filter->to_json() : json()}};
    if (options.exact || options.ef) {  // keys of plain queries stay as they were
      key["exact"] = options.exact;
      key["ef"] = options.ef ? json(*options.ef) : json();
    }
    key["v"] = json::binary(std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(vector.data()),
                                                 reinterpret_cast<const uint8_t*>(vector.data() + vector.size())));
    const auto packed = json::to_msgpack(key);
    const std::string hash =
        "query:" + util::sha1_hex(std::string_view(reinterpret_cast<const char*>(packed.data()), packed.size()));
    return cached<std::vector<QueryHit>>(ds_scope(d), hash, encode_hits, decode_hits,
                                         [&] { return primary().query(d, vector, options); });
  }

  std::string save_checkpoint(const Checkpoint& c) override {
    return write_scope(model_scope(c.model), [&] { return primary().checkpoints().save_checkpoint(c); });
  }
  Checkpoint load_checkpoint(const std::string& path) override {
    const auto ref = CheckpointRef::parse(path);
    return cached<Checkpoint>(model_scope(ref.model), ref.to_string(), encode_checkpoint, decode_checkpoint,
                              [&] { return primary().checkpoints().load_checkpoint(path); });
  }
  std::vector<CheckpointInfo> list_checkpoints(const std::string& m) override {
    return primary().checkpoints().list_checkpoints(m);
  }
  bool delete_checkpoint(const std::string& path) override {
    const auto ref = CheckpointRef::parse(path);
    return write_scope(model_scope(ref.model), [&] { return primary().checkpoints().delete_checkpoint(path); });
  }

  std::string id_key(const std::string& id) const override { return primary().id_key(id); }
  int ingest_writers() const override { return primary().ingest_writers(); }
  int max_ingest_writers() const override { return primary().max_ingest_writers(); }
  void set_writer(const std::string& writer) override { primary().set_writer(writer); }
  std::string finish_ingest(const std::string& dataset, const IndexProgressFn& progress) override {
    return primary().finish_ingest(dataset, progress);
  }

  Stats stats() override {
    Stats s = primary().stats();
    json c = m_cache.stats();
    c["session_hits"] = m_hits.load();
    c["session_misses"] = m_misses.load();
    s.extra["cache"] = std::move(c);
    return s;
  }

 private:
  // Opened on first need (a backend is used by one thread at a time, see backend.hpp users;
  // the mutex only guards the opening).
  Backend& primary() const {
    std::lock_guard lock(m_open_mutex);
    if (!m_primary) {
      m_primary = m_open();
    }
    return *m_primary;
  }

  std::string ds_scope(const std::string& d) const { return m_scope + "|ds|" + d; }
  std::string model_scope(const std::string& m) const { return m_scope + "|ckpt|" + m; }

  static RowBatch decode(const std::vector<std::optional<std::string>>& values) {
    std::vector<std::string_view> rows;
    rows.reserve(values.size());
    for (const auto& v : values) {
      rows.emplace_back(*v);
    }
    return decode_rows(rows);
  }
  void store_rows(const std::string& d, const std::string& generation, const std::vector<int64_t>& positions,
                  const RowBatch& b) {
    if (b.size() != positions.size()) {
      return;  // the primary's answer does not map onto the positions: nothing to file
    }
    std::vector<std::string> rows;
    rows.reserve(b.size());
    for (size_t i = 0; i < b.size(); ++i) {
      rows.push_back(encode_row(b, i));
    }
    m_cache.store_rows(ds_scope(d), generation, positions, rows);
  }

  // Explicit return types: these are called above their definitions, so `auto` cannot be deduced.
  template <class F>
  std::invoke_result_t<F&> write_ds(const std::string& d, F&& f) {
    return write_scope(ds_scope(d), std::forward<F>(f));
  }
  // Runs the primary write between begin_write and end_write (also when it threw).
  template <class F>
  std::invoke_result_t<F&> write_scope(const std::string& scope, F&& f) {
    struct Bracket {
      redis::Cache& cache;
      const std::string& scope;
      std::string token;
      ~Bracket() { cache.end_write(scope, token); }
    } guard{m_cache, scope, m_cache.begin_write(scope)};
    return f();
  }

  template <class T, class Enc, class Dec, class Load>
  T cached(const std::string& scope, const std::string& key, Enc encode, Dec decode_value, Load load) {
    auto found = m_cache.lookup(scope, key);
    if (found && found->value) {
      try {
        T v = decode_value(*found->value);
        ++m_hits;
        return v;
      } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): a corrupt entry is a miss
      }
    }
    ++m_misses;
    T v = load();
    if (found) {
      m_cache.store(scope, found->generation, key, encode(v));
    }
    return v;
  }

  OpenBackend m_open;
  mutable std::mutex m_open_mutex;
  mutable std::unique_ptr<Backend> m_primary;
  std::string m_kind;
  redis::Cache m_cache;
  std::string m_scope;
  std::atomic<int64_t> m_hits{0};
  std::atomic<int64_t> m_misses{0};
};

void check_cache_profile(const Profile& cache_profile) {
  if (cache_profile.type() != "redis") {
    throw UsageError(fmt::format("profile \"{}\" ({}): a cache must be a redis profile, not \"{}\"",
                                 cache_profile.name(), cache_profile.source(), cache_profile.type()));
  }
}

}  // namespace

std::unique_ptr<Backend> make_cached(OpenBackend open_primary, const Profile& primary_profile,
                                     const Profile& cache_profile) {
  check_cache_profile(cache_profile);
  const int64_t memory_mb = primary_profile.get_int("cache_memory_mb", 0);
  if (memory_mb < 0 || memory_mb > k_max_cache_memory_mb) {
    throw UsageError(fmt::format("profile \"{}\" ({}): key \"cache_memory_mb\": {} is not in 0..{}",
                                 primary_profile.name(), primary_profile.source(), memory_mb, k_max_cache_memory_mb));
  }
  return std::make_unique<CachedBackend>(std::move(open_primary), primary_profile.type(), cache_profile,
                                         cache_scope(primary_profile), memory_mb << 20);
}

std::unique_ptr<Backend> make_cached(std::unique_ptr<Backend> primary, const Profile& cache_profile,
                                     const std::string& scope) {
  check_cache_profile(cache_profile);
  std::string kind = primary->kind();
  auto held = std::make_shared<std::unique_ptr<Backend>>(std::move(primary));
  return std::make_unique<CachedBackend>([held] { return std::move(*held); }, std::move(kind), cache_profile, scope, 0);
}

std::unique_ptr<Backend> make_cached(std::unique_ptr<Backend> primary, const Profile& cache_profile) {
  const std::string scope = primary->kind();
  return make_cached(std::move(primary), cache_profile, scope);
}

}  // namespace vstash::backends
