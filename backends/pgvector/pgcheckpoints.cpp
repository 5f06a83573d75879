// SPDX-License-Identifier: MIT
// Checkpoints: a metadata row and one bytea row per array.
//
// A save without overwrite inserts the metadata row with ON CONFLICT DO NOTHING: the
// primary key lets exactly one of several concurrent savers of an epoch in.
// MODEL@latest lives in its own table and moves only forward: the upsert's WHERE refuses a
// lower epoch, and the row lock it takes orders concurrent savers. Deleting the latest
// checkpoint moves the pointer down under SELECT ... FOR UPDATE.
#include "backends/pgvector/pgcheckpoints.hpp"

#include <fmt/format.h>
#include <cstring>
#include <utility>

#include "src/errors.hpp"

namespace vstash::backends::pgvector {

namespace {
using json = nlohmann::json;

std::map<std::string, double> metrics_from(std::string_view text) { return metrics_from_json(json::parse(text)); }

std::string where(const std::string& path) { return fmt::format("checkpoint \"{}\"", path); }

// The epoch a reference names, inside the caller's transaction; nullopt if none.
std::optional<int64_t> resolve(Session& s, const Tables& t, const CheckpointRef& ref) {
  if (ref.epoch) {
    return ref.epoch;
  }
  const Result r = s.exec(fmt::format("SELECT epoch FROM {} WHERE model = $1", t.latest), {Param(ref.model)});
  if (r.rows() == 0) {
    return std::nullopt;
  }
  return r.int_text(0, 0);
}
std::string save(Session& s, const Tables& t, const Checkpoint& c) {
  validate_model_name(c.model);
  if (c.epoch < 0) {
    throw UsageError(fmt::format("checkpoint \"{}\": epoch must not be negative", checkpoint_path(c.model, c.epoch)));
  }
  const std::string path = checkpoint_path(c.model, c.epoch);
  int64_t bytes = 0;
  for (const auto& [name, a] : c.arrays) {
    bytes += static_cast<int64_t>(a.nbytes());
  }
  s.transact("saving " + where(path), [&](pqxx::work&) {
    const Param model(c.model);
    const Param epoch(c.epoch);
    // Without overwrite the primary key decides: a concurrent saver of the same epoch waits
    // for the first one's commit and then inserts nothing.
    const Result head = s.exec(
        fmt::format("INSERT INTO {} (model, epoch, metrics, metadata, created_at, bytes) VALUES ($1, $2::bigint, "
                    "$3::jsonb, $4::jsonb, $5, $6::bigint) ON CONFLICT (model, epoch) {} RETURNING 1",
                    t.checkpoints,
                    c.overwrite ? "DO UPDATE SET metrics = excluded.metrics, metadata = excluded.metadata, "
                                  "created_at = excluded.created_at, bytes = excluded.bytes"
                                : "DO NOTHING"),
        {model, epoch, Param(metrics_to_json(c.metrics).dump()),
         Param(c.metadata.is_object() ? c.metadata.dump() : std::string("{}")), Param(now_rfc3339()), Param(bytes)});
    if (head.rows() == 0) {
      throw_checkpoint_exists(s.location(), path);
    }
    s.exec(fmt::format("DELETE FROM {} WHERE model = $1 AND epoch = $2::bigint", t.arrays), {model, epoch});
    for (const auto& [name, a] : c.arrays) {
      s.exec(fmt::format("INSERT INTO {} (model, epoch, name, dtype, shape, data) VALUES ($1, $2::bigint, $3, $4, "
                         "$5::jsonb, $6::bytea)",
                         t.arrays),
             {model, epoch, Param(name), Param(std::string(dtype_name(a.dtype()))), Param(json(a.shape()).dump()),
              Param::bytes(std::string(reinterpret_cast<const char*>(a.data()), a.nbytes()))});
    }
    s.exec(fmt::format("INSERT INTO {0} AS l (model, epoch) VALUES ($1, $2::bigint) ON CONFLICT (model) DO UPDATE "
                       "SET epoch = excluded.epoch WHERE l.epoch <= excluded.epoch",
                       t.latest),
           {model, epoch});
  });
  return path;
}

Checkpoint load(Session& s, const Tables& t, const std::string& path) {
  const CheckpointRef ref = CheckpointRef::parse(path);
  Checkpoint c;
  s.transact("loading " + where(path), [&](pqxx::work&) {
    s.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const auto epoch = resolve(s, t, ref);
    const Result head =
        epoch ? s.exec(fmt::format("SELECT metrics::text, metadata::text, created_at FROM {} WHERE model = $1 AND "
                                   "epoch = $2::bigint",
                                   t.checkpoints),
                       {Param(ref.model), Param(*epoch)})
              : Result(nullptr);
    if (!epoch || head.rows() == 0) {
      throw NotFoundError(fmt::format("{}: {} does not exist", s.location(), where(path)));
    }
    c.model = ref.model;
    c.epoch = *epoch;
    c.metrics = metrics_from(head.get(0, 0));
    c.metadata = json::parse(head.get(0, 1));
    c.created_at = head.text(0, 2);
    const Result arrays = s.exec(
        fmt::format("SELECT name, dtype, shape::text, data FROM {} WHERE model = $1 AND epoch = $2::bigint", t.arrays),
        {Param(ref.model), Param(*epoch)}, true);
    for (int i = 0; i < arrays.rows(); ++i) {
      Shape shape = json::parse(arrays.get(i, 2)).get<Shape>();
      const auto data = arrays.get(i, 3);
      std::vector<std::byte> bytes(data.size());
      std::memcpy(bytes.data(), data.data(), data.size());
      Array a(parse_dtype_name(arrays.text(i, 1)), std::move(shape));
      if (a.nbytes() != bytes.size()) {
        throw Error(fmt::format("{}: {}: array \"{}\" has {} bytes, its shape needs {}", s.location(), where(path),
                                arrays.text(i, 0), bytes.size(), a.nbytes()));
      }
      a.storage() = std::move(bytes);
      c.arrays.emplace(arrays.text(i, 0), std::move(a));
    }
  });
  return c;
}

std::vector<CheckpointInfo> list(Session& s, const Tables& t, const std::string& model) {
  std::vector<CheckpointInfo> out;
  s.transact("listing checkpoints", [&](pqxx::work&) {
    const Result r = s.exec(
        fmt::format(
            "SELECT c.model, c.epoch, c.metrics::text, c.bytes, c.created_at, COALESCE(l.epoch = c.epoch, false) "
            "FROM {} c LEFT JOIN {} l ON l.model = c.model WHERE $1 = '' OR c.model = $1 ORDER BY c.model, c.epoch",
            t.checkpoints, t.latest),
        {Param(model)});
    for (int i = 0; i < r.rows(); ++i) {
      CheckpointInfo info;
      info.model = r.text(i, 0);
      info.epoch = r.int_text(i, 1);
      info.path = checkpoint_path(info.model, info.epoch);
      info.metrics = metrics_from(r.get(i, 2));
      info.bytes = r.int_text(i, 3);
      info.created_at = r.text(i, 4);
      info.latest = r.get(i, 5) == "t";
      out.push_back(std::move(info));
    }
  });
  return out;
}

bool remove(Session& s, const Tables& t, const std::string& path) {
  const CheckpointRef ref = CheckpointRef::parse(path);
  bool existed = false;
  s.transact("deleting " + where(path), [&](pqxx::work&) {
    const Result latest =
        s.exec(fmt::format("SELECT epoch FROM {} WHERE model = $1 FOR UPDATE", t.latest), {Param(ref.model)});
    const auto epoch =
        ref.epoch ? ref.epoch : (latest.rows() > 0 ? std::optional<int64_t>(latest.int_text(0, 0)) : std::nullopt);
    if (!epoch) {
      return;
    }
    const Result d =
        s.exec(fmt::format("DELETE FROM {} WHERE model = $1 AND epoch = $2::bigint RETURNING 1", t.checkpoints),
               {Param(ref.model), Param(*epoch)});
    existed = d.rows() > 0;
    if (existed && latest.rows() > 0 && latest.int_text(0, 0) == *epoch) {
      const Result next =
          s.exec(fmt::format("SELECT max(epoch) FROM {} WHERE model = $1", t.checkpoints), {Param(ref.model)});
      if (next.is_null(0, 0)) {
        s.exec(fmt::format("DELETE FROM {} WHERE model = $1", t.latest), {Param(ref.model)});
      } else {
        s.exec(fmt::format("UPDATE {} SET epoch = $2::bigint WHERE model = $1", t.latest),
               {Param(ref.model), Param(next.int_text(0, 0))});
      }
    }
  });
  return existed;
}

}  // namespace

PgCheckpoints::PgCheckpoints(Session& session, TablesFn tables) : m_session(session), m_tables(std::move(tables)) {}

std::string PgCheckpoints::save_checkpoint(const Checkpoint& c) { return save(m_session, m_tables(), c); }

Checkpoint PgCheckpoints::load_checkpoint(const std::string& path) { return load(m_session, m_tables(), path); }

std::vector<CheckpointInfo> PgCheckpoints::list_checkpoints(const std::string& model) {
  return list(m_session, m_tables(), model);
}

bool PgCheckpoints::delete_checkpoint(const std::string& path) { return remove(m_session, m_tables(), path); }

}  // namespace vstash::backends::pgvector
