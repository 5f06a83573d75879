// SPDX-License-Identifier: MIT
// The cache tier decorator: read-through caching of batches, queries and checkpoint loads.
//
// Invalidation: every cached value is filed under a scope (the primary's scope plus one
// dataset, or plus one model) and that scope's generation token (backends/redis/rediscache
// .hpp). Every write or delete through vstash replaces the token AFTER the primary call
// returns (or throws: a failed call may have written part of its rows), so a read that
// starts after the write can only find values computed after it. A reader that raced the
// write stores its value under the old token, where nobody looks. Writes made to the
// primary by other programs are not seen; cached values then live until the cache ttl.
#include "cachedbackend.hpp"

#include <atomic>
#include <type_traits>
#include <cstring>
#include <fmt/format.h>

#include "../../src/errors.hpp"
#include "../../src/profile.hpp"
#include "../../src/util/uuid.hpp"
#include "rowcodec.hpp"
#ifdef VSTASH_HAVE_REDIS
#include "../redis/rediscache.hpp"
#endif

namespace vstash::backends {

std::string cache_scope(const Profile& primary_profile) {
  return fmt::format("{}:{}", primary_profile.type(),
                     util::sha1_hex(primary_profile.redacted().dump()).substr(0, 16));
}

#ifdef VSTASH_HAVE_REDIS
namespace {

// Length-prefixed binary framing: ids and metadata may hold any bytes, so no JSON text.
class Writer {
 public:
  void u64(uint64_t v) { m_out.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void f64(double v) {
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    u64(bits);
  }
  void bytes(std::string_view s) {
    u64(s.size());
    m_out.append(s);
  }
  void doc(const json& j) {
    const auto packed = json::to_msgpack(j);
    bytes(std::string_view(reinterpret_cast<const char*>(packed.data()), packed.size()));
  }
  std::string take() { return std::move(m_out); }

 private:
  std::string m_out;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : m_in(in) {}
  uint64_t u64() {
    need(8);
    uint64_t v = 0;
    std::memcpy(&v, m_in.data() + m_at, 8);
    m_at += 8;
    return v;
  }
  int64_t i64() { return static_cast<int64_t>(u64()); }
  double f64() {
    const uint64_t bits = u64();
    double v = 0;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  std::string_view bytes() {
    const auto n = u64();
    need(n);
    auto s = m_in.substr(m_at, n);
    m_at += n;
    return s;
  }
  json doc() {
    const auto s = bytes();
    return json::from_msgpack(s.begin(), s.end());
  }

 private:
  void need(uint64_t n) const {
    if (m_at + n > m_in.size()) {
      throw Error("cache: truncated value");
    }
  }
  std::string_view m_in;
  size_t m_at = 0;
};

std::string encode_batch(const RowBatch& b) {
  Writer w;
  w.u64(b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    w.bytes(b.ids[i]);
    w.i64(b.indices.empty() ? -1 : b.indices[i]);
    w.doc(b.metadata.empty() ? json() : b.metadata[i]);
  }
  w.bytes(encode_array(b.data));
  w.u64(b.labels ? 1 : 0);
  if (b.labels) {
    w.bytes(encode_array(*b.labels));
  }
  return w.take();
}

RowBatch decode_batch(std::string_view s) {
  Reader r(s);
  RowBatch b;
  const auto n = r.u64();
  for (uint64_t i = 0; i < n; ++i) {
    b.ids.emplace_back(r.bytes());
    b.indices.push_back(r.i64());
    b.metadata.push_back(r.doc());
  }
  b.data = decode_array(r.bytes());
  if (r.u64() == 1) {
    b.labels = decode_array(r.bytes());
  }
  return b;
}

std::string encode_hits(const std::vector<QueryHit>& hits) {
  Writer w;
  w.u64(hits.size());
  for (const auto& h : hits) {
    w.bytes(h.id);
    w.i64(h.index);
    w.f64(h.score);
    w.u64(h.values ? 1 : 0);
    if (h.values) {
      w.bytes(std::string_view(reinterpret_cast<const char*>(h.values->data()), h.values->size() * sizeof(float)));
    }
    w.doc(h.metadata);
  }
  return w.take();
}

std::vector<QueryHit> decode_hits(std::string_view s) {
  Reader r(s);
  std::vector<QueryHit> hits(r.u64());
  for (auto& h : hits) {
    h.id = r.bytes();
    h.index = r.i64();
    h.score = r.f64();
    if (r.u64() == 1) {
      const auto v = r.bytes();
      h.values.emplace(v.size() / sizeof(float));
      std::memcpy(h.values->data(), v.data(), v.size());
    }
    h.metadata = r.doc();
  }
  return hits;
}

std::string encode_checkpoint(const Checkpoint& c) {
  Writer w;
  w.bytes(c.model);
  w.i64(c.epoch);
  w.bytes(c.created_at);
  w.doc(c.metrics);
  w.doc(c.metadata);
  w.u64(c.arrays.size());
  for (const auto& [name, a] : c.arrays) {
    w.bytes(name);
    w.bytes(encode_array(a));
  }
  return w.take();
}

Checkpoint decode_checkpoint(std::string_view s) {
  Reader r(s);
  Checkpoint c;
  c.model = r.bytes();
  c.epoch = r.i64();
  c.created_at = r.bytes();
  c.metrics = r.doc().get<std::map<std::string, double>>();
  c.metadata = r.doc();
  const auto n = r.u64();
  for (uint64_t i = 0; i < n; ++i) {
    std::string name(r.bytes());
    c.arrays.emplace(std::move(name), decode_array(r.bytes()));
  }
  return c;
}

class CachedBackend final : public Backend {
 public:
  CachedBackend(std::unique_ptr<Backend> primary, const Profile& cache_profile, std::string scope)
      : m_primary(std::move(primary)), m_cache(cache_profile), m_scope(std::move(scope)) {}

  std::string kind() const override { return m_primary->kind(); }

  void create_dataset(const DatasetSpec& spec) override {
    write_ds(spec.name, [&] { m_primary->create_dataset(spec); });
  }
  std::optional<DatasetInfo> dataset_info(const std::string& d) override { return m_primary->dataset_info(d); }
  std::vector<DatasetInfo> list_datasets() override { return m_primary->list_datasets(); }
  bool drop_dataset(const std::string& d) override {
    return write_ds(d, [&] { return m_primary->drop_dataset(d); });
  }

  void write_rows(const std::string& d, const RowBatch& batch) override {
    write_ds(d, [&] { m_primary->write_rows(d, batch); });
  }
  RowBatch read_rows(const std::string& d, int64_t offset, int64_t count) override {
    return cached<RowBatch>(ds_scope(d), fmt::format("rows:{}:{}", offset, count), encode_batch, decode_batch,
                            [&] { return m_primary->read_rows(d, offset, count); });
  }
  RowBatch read_positions(const std::string& d, const std::vector<int64_t>& positions) override {
    const std::string key = "pos:" + util::sha1_hex(std::string_view(
                                         reinterpret_cast<const char*>(positions.data()), positions.size() * 8));
    return cached<RowBatch>(ds_scope(d), key, encode_batch, decode_batch,
                            [&] { return m_primary->read_positions(d, positions); });
  }
  RowBatch fetch(const std::string& d, const std::vector<std::string>& ids) override { return m_primary->fetch(d, ids); }
  void update_row(const std::string& d, const std::string& id, const std::optional<Array>& sample,
                  const std::optional<json>& metadata) override {
    write_ds(d, [&] { m_primary->update_row(d, id, sample, metadata); });
  }
  int64_t delete_ids(const std::string& d, const std::vector<std::string>& ids) override {
    return write_ds(d, [&] { return m_primary->delete_ids(d, ids); });
  }
  int64_t delete_where(const std::string& d, const Filter& filter) override {
    return write_ds(d, [&] { return m_primary->delete_where(d, filter); });
  }
  int64_t count(const std::string& d, const Filter* filter) override { return m_primary->count(d, filter); }
  std::vector<QueryHit> query(const std::string& d, const std::vector<float>& vector,
                              const QueryOptions& options) override {
    Writer w;
    w.bytes(std::string_view(reinterpret_cast<const char*>(vector.data()), vector.size() * sizeof(float)));
    w.i64(options.top_k);
    w.u64((options.include_values ? 1 : 0) | (options.include_metadata ? 2 : 0));
    w.doc(options.filter != nullptr ? options.filter->to_json() : json());
    const std::string key = "query:" + util::sha1_hex(w.take());
    return cached<std::vector<QueryHit>>(ds_scope(d), key, encode_hits, decode_hits,
                                         [&] { return m_primary->query(d, vector, options); });
  }

  std::string save_checkpoint(const Checkpoint& c) override {
    return write_scope(model_scope(c.model), [&] { return m_primary->save_checkpoint(c); });
  }
  Checkpoint load_checkpoint(const std::string& path) override {
    const auto ref = CheckpointRef::parse(path);
    return cached<Checkpoint>(model_scope(ref.model), ref.to_string(), encode_checkpoint, decode_checkpoint,
                              [&] { return m_primary->load_checkpoint(path); });
  }
  std::vector<CheckpointInfo> list_checkpoints(const std::string& m) override { return m_primary->list_checkpoints(m); }
  bool delete_checkpoint(const std::string& path) override {
    const auto ref = CheckpointRef::parse(path);
    return write_scope(model_scope(ref.model), [&] { return m_primary->delete_checkpoint(path); });
  }

  void record_progress(const ProgressRecord& r) override { m_primary->record_progress(r); }
  std::vector<ProgressRecord> list_progress(const std::string& run) override { return m_primary->list_progress(run); }

  std::string id_key(const std::string& id) const override { return m_primary->id_key(id); }
  int ingest_writers() const override { return m_primary->ingest_writers(); }
  int max_ingest_writers() const override { return m_primary->max_ingest_writers(); }
  std::string finish_ingest(const std::string& dataset, const IndexProgressFn& progress) override {
    return m_primary->finish_ingest(dataset, progress);
  }

  Stats stats() override {
    Stats s = m_primary->stats();
    json c = m_cache.stats();
    c["session_hits"] = m_hits.load();
    c["session_misses"] = m_misses.load();
    s.extra["cache"] = std::move(c);
    return s;
  }

 private:
  std::string ds_scope(const std::string& d) const { return m_scope + "|ds|" + d; }
  std::string model_scope(const std::string& m) const { return m_scope + "|ckpt|" + m; }

  // Explicit return types: these are called above their definitions, so `auto` cannot be deduced.
  template <class F>
  std::invoke_result_t<F&> write_ds(const std::string& d, F&& f) {
    return write_scope(ds_scope(d), std::forward<F>(f));
  }
  // Runs the primary write, then invalidates, also when it threw.
  template <class F>
  std::invoke_result_t<F&> write_scope(const std::string& scope, F&& f) {
    struct Invalidate {
      redis::Cache& cache;
      const std::string& scope;
      ~Invalidate() { cache.invalidate(scope); }
    } guard{m_cache, scope};
    return f();
  }

  template <class T, class Enc, class Dec, class Load>
  T cached(const std::string& scope, const std::string& key, Enc encode, Dec decode, Load load) {
    auto found = m_cache.lookup(scope, key);
    if (found && found->value) {
      try {
        T v = decode(*found->value);
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

  std::unique_ptr<Backend> m_primary;
  redis::Cache m_cache;
  std::string m_scope;
  std::atomic<int64_t> m_hits{0};
  std::atomic<int64_t> m_misses{0};
};

}  // namespace

std::unique_ptr<Backend> make_cached(std::unique_ptr<Backend> primary, const Profile& cache_profile,
                                     const std::string& scope) {
  if (cache_profile.type() != "redis") {
    throw UsageError(fmt::format("profile \"{}\" ({}): a cache must be a redis profile, not \"{}\"",
                                 cache_profile.name(), cache_profile.source(), cache_profile.type()));
  }
  return std::make_unique<CachedBackend>(std::move(primary), cache_profile, scope);
}
#else
std::unique_ptr<Backend> make_cached(std::unique_ptr<Backend>, const Profile& cache_profile, const std::string&) {
  throw UsageError(fmt::format("profile \"{}\" ({}): the cache tier needs the redis backend, which is not compiled in",
                               cache_profile.name(), cache_profile.source()));
}
#endif

std::unique_ptr<Backend> make_cached(std::unique_ptr<Backend> primary, const Profile& cache_profile) {
  const std::string scope = primary->kind();
  return make_cached(std::move(primary), cache_profile, scope);
}

}  // namespace vstash::backends
