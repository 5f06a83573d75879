// SPDX-License-Identifier: MIT
#include "python/store.hpp"

#include <fmt/format.h>
#include <pybind11/stl.h>
#include <cmath>
#include <set>

#include "backends/registry.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "workflows/ingest/pipeline.hpp"
#include "workflows/training/dataloader.hpp"
#include "workflows/training/retention.hpp"
#include "workflows/training/sharding.hpp"

namespace vstash::python {

namespace {

constexpr int64_t k_max_batch_rows = int64_t{1} << 24;  // the CLI's --size bound

// Runs fn(backend) without the GIL, holding the store's lock.
template <class F>
auto locked(StoreState& state, F&& fn) {
  py::gil_scoped_release release;
  std::lock_guard lock(state.mutex);
  return fn(*state.backend);
}

std::string type_name(py::handle obj) { return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>(); }

std::vector<std::string> string_list(const py::object& obj, const std::string& what) {
  if (py::isinstance<py::str>(obj) || !py::isinstance<py::sequence>(obj)) {
    throw UsageError(fmt::format("{}: expected a list of strings, got {}", what, type_name(obj)));
  }
  std::vector<std::string> out;
  for (const auto& item : obj) {
    if (!py::isinstance<py::str>(item)) {
      throw UsageError(fmt::format("{}: expected strings, got {}", what, type_name(item)));
    }
    out.push_back(item.cast<std::string>());
  }
  return out;
}

// Ids must name rows: non-empty and unique (like `vstash ingest --ids`).
void check_ids(const std::vector<std::string>& ids, const std::string& what) {
  std::set<std::string> seen;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].empty()) {
      throw UsageError(fmt::format("{}: row {}: empty id", what, i));
    }
    if (!seen.insert(ids[i]).second) {
      throw UsageError(fmt::format("{}: row {}: duplicate id \"{}\"", what, i, ids[i]));
    }
  }
}

// NaN/Inf rows are refused before anything is written, with ingest's message.
void check_finite(const Array& data, const std::string& what) {
  std::vector<int64_t> bad;
  data.append_nonfinite_rows(0, bad);
  if (bad.empty()) {
    return;
  }
  std::string rows;
  for (size_t i = 0; i < std::min<size_t>(bad.size(), 5); ++i) {
    rows += fmt::format("{}{}", i ? ", " : "", bad[i]);
  }
  throw UsageError(fmt::format("{}: {} row(s) contain NaN or Inf (rows {}{})", what, bad.size(), rows,
                               bad.size() > 5 ? ", ..." : ""));
}

py::array rows_array(const py::array& arr, const std::string& what) {
  if (arr.ndim() < 1) {
    throw UsageError(fmt::format("{}: expected an array of rows (at least 1-D), got a scalar", what));
  }
  return arr;
}

// arr converted to the dataset's dtype and shaped (n, row_shape...).
py::array fit_rows(py::array arr, DType dtype, const Shape& row_shape, const backends::DatasetSpec& spec,
                   const std::string& what) {
  const int64_t n = arr.ndim() == 0 ? 1 : arr.shape(0);
  const int64_t per_row = n == 0 ? shape_product(row_shape) : static_cast<int64_t>(arr.size()) / n;
  if (&row_shape == &spec.row_shape) {
    commands::check_dimension(spec, static_cast<size_t>(per_row), what);
  } else if (per_row != shape_product(row_shape)) {
    throw UsageError(fmt::format("{}: {} values per row, dataset \"{}\" has labels of shape {}", what, per_row,
                                 spec.name, shape_to_string(row_shape)));
  }
  if (dtype_of(arr.dtype(), what) != dtype) {
    arr = arr.attr("astype")(numpy_dtype(dtype));
  }
  py::tuple shape(1 + row_shape.size());
  shape[0] = n;
  for (size_t i = 0; i < row_shape.size(); ++i) {
    shape[i + 1] = row_shape[i];
  }
  return contiguous(arr.attr("reshape")(shape), what);
}

backends::Metric metric_of(const Profile& profile, const std::string& metric) {
  return backends::parse_metric(metric.empty() ? profile.get_string("metric", "cosine") : metric);
}

}  // namespace

std::unique_ptr<backends::Backend> StoreState::connect(backends::Access access) const {
  return backends::create_backend(profile, &file, access);
}

void check_signals_released() {
  py::gil_scoped_acquire acquire;
  if (PyErr_CheckSignals() != 0) {
    throw PythonSignal();
  }
}

ClassicalBackend::ClassicalBackend(const py::object& config, const std::string& config_file, const std::string& dataset,
                                   bool read_only)
    : m_state(std::make_shared<StoreState>()) {
  auto& st = *m_state;
  if (py::isinstance<py::dict>(config)) {
    const auto values = to_json_object(config, "config");
    st.profile = profile_from_json("config", values, "<dict>");
    if (values.contains("cache") || !config_file.empty()) {
      st.file = find_profile_file(config_file);  // a `cache:` key names a profile of the file
    }
  } else if (config.is_none() || py::isinstance<py::str>(config)) {
    st.file = find_profile_file(config_file);
    st.profile = select_profile(st.file, config.is_none() ? std::string() : config.cast<std::string>());
  } else {
    throw UsageError(
        fmt::format("config: expected a profile name or a dict of profile keys, got {}", type_name(config)));
  }
  m_dataset = dataset.empty() ? st.profile.default_dataset() : dataset;
  const auto access = read_only ? backends::Access::read_only : backends::Access::read_write;
  py::gil_scoped_release release;
  st.backend = st.connect(access);
}

std::string ClassicalBackend::dataset_or_default(const std::string& dataset) const {
  const std::string name = dataset.empty() ? m_dataset : dataset;
  backends::check_dataset_name(name);
  return name;
}

std::string ClassicalBackend::repr() const {
  const auto& p = m_state->profile;
  return fmt::format("<vstash.ClassicalBackend {} profile \"{}\" ({}) dataset \"{}\">", p.type(), p.name(), p.source(),
                     m_dataset);
}

py::object ClassicalBackend::config() const { return from_json(m_state->profile.redacted()); }

namespace {

// The rows store_training_data writes: views of the caller's arrays and the ids (empty: row numbers).
struct TrainingRows {
  const Array& data;
  const std::optional<Array>& labels;
  const std::vector<std::string>& ids;
};

// The ingest pipeline, as `vstash ingest` runs it: the backend's number of writers,
// each over its own connection, blocks sized by row bytes.
void write_training_rows(backends::Backend& backend, const StoreState& state, const backends::DatasetSpec& spec,
                         const TrainingRows& rows, int64_t base) {
  const int64_t n = rows.data.rows();
  std::vector<std::unique_ptr<backends::Backend>> own;
  std::vector<backends::Backend*> writers{&backend};
  if (backend.ingest_writers() > 1) {
    writers.clear();
    for (int i = 0; i < backend.ingest_writers(); ++i) {
      own.push_back(state.connect(backends::Access::read_write));
      writers.push_back(own.back().get());
    }
  }
  ingest::IngestPlan plan;
  plan.spec = spec;
  plan.total = n;
  plan.batch_size = ingest::default_block_rows(spec);
  plan.base = base;
  auto read = [&](int64_t first, int64_t count) {
    count = std::min(count, n - first);
    backends::RowBatch b;
    b.data = rows.data.slice_rows(first, count);
    if (rows.labels) {
      b.labels = rows.labels->slice_rows(first, count);
    }
    for (int64_t r = first; r < first + count; ++r) {
      b.ids.push_back(rows.ids.empty() ? std::to_string(base + r) : rows.ids[static_cast<size_t>(r)]);
      b.indices.push_back(base + r);
      b.metadata.emplace_back();
    }
    return b;
  };
  ingest::run_pipeline(read, plan, writers, [](int64_t) { check_signals_released(); });
}

}  // namespace

void ClassicalBackend::store_training_data(const std::string& dataset_id, const py::object& data,
                                           const py::object& labels, const py::object& metadata, const py::object& ids,
                                           const std::string& metric, bool append, bool build_index) {
  backends::check_dataset_name(dataset_id);
  const py::array d = rows_array(contiguous(data, "data"), "data");
  const Array data_view = array_view(d, "data");
  const int64_t n = data_view.rows();
  std::optional<py::array> l;
  std::optional<Array> label_view;
  if (!labels.is_none()) {
    l = rows_array(contiguous(labels, "labels"), "labels");
    if (l->shape(0) != n) {
      throw UsageError(fmt::format("labels: {} labels for {} data rows", l->shape(0), n));
    }
    label_view = array_view(*l, "labels");
  }
  std::vector<std::string> id_list;
  if (!ids.is_none()) {
    id_list = string_list(ids, "ids");
    if (static_cast<int64_t>(id_list.size()) != n) {
      throw UsageError(fmt::format("ids: {} ids for {} data rows", id_list.size(), n));
    }
    check_ids(id_list, "ids");
  }
  backends::DatasetSpec spec;
  spec.name = dataset_id;
  spec.dtype = data_view.dtype();
  spec.row_shape = data_view.row_shape();
  if (label_view) {
    spec.label_dtype = label_view->dtype();
    spec.label_shape = label_view->row_shape();
  }
  spec.metric = metric_of(m_state->profile, metric);
  spec.metadata = to_json_object(metadata, "metadata");
  check_finite(data_view, "data");
  const TrainingRows rows{data_view, label_view, id_list};

  try {
    locked(*m_state, [&](backends::Backend& backend) {
      int64_t base = 0;
      if (auto info = backend.dataset_info(dataset_id); info && info->rows > 0) {
        if (!append) {
          throw ConflictError(
              fmt::format("dataset \"{}\" already has {} rows: pass append=True to add rows", dataset_id, info->rows));
        }
        base = info->next_index;
      }
      backend.create_dataset(spec);
      write_training_rows(backend, *m_state, spec, rows, base);
      // Training data is read in batches, not searched: the ANN index that `vstash ingest`
      // builds at its end (minutes for a million rows) is built only when asked for.
      if (build_index) {
        backend.finish_ingest(dataset_id);
      }
    });
  } catch (const PythonSignal&) {
    throw py::error_already_set();
  }
}

py::tuple ClassicalBackend::load_training_batch(const std::string& dataset_id, int64_t batch_size, bool shuffle,
                                                int64_t offset, uint64_t seed, int64_t epoch, int64_t rank,
                                                int64_t world_size, const std::string& remainder) {
  backends::check_dataset_name(dataset_id);
  commands::check_range("batch_size", batch_size, 1, k_max_batch_rows);
  if (offset < 0 || epoch < 0) {
    throw UsageError("load_training_batch: offset and epoch must not be negative");
  }
  const training::ShardSpec shard{rank, world_size, training::parse_remainder_policy(remainder)};
  training::validate_shard(shard);
  auto [spec, rows] = locked(*m_state, [&](backends::Backend& backend) {
    const auto info = commands::require_dataset(backend, dataset_id);
    // Positions from the epoch plan (one rank's shard, as `vstash batch --rank --world-size`
    // reads it; O(batch) to compute), then samples and labels only: no ids are returned.
    const training::EpochPlan plan(info.rows, std::nullopt,
                                   {shuffle, seed, epoch, shard, training::OrderKind::strided, batch_size, false});
    return std::pair(info.spec, backend.read_samples(dataset_id, plan.entries(offset, batch_size)));
  });
  auto with_rows = [](const Shape& row_shape) {
    Shape s{0};
    s.insert(s.end(), row_shape.begin(), row_shape.end());
    return s;
  };
  if (rows.size() == 0) {
    rows.data = Array(spec.dtype, with_rows(spec.row_shape));
    if (spec.label_dtype) {
      rows.labels = Array(*spec.label_dtype, with_rows(spec.label_shape));
    }
  }
  py::object labels = rows.labels ? py::object(to_numpy(std::move(*rows.labels))) : py::none();
  return py::make_tuple(to_numpy(std::move(rows.data)), labels);
}

std::string ClassicalBackend::save_checkpoint(const std::string& model_id, int64_t epoch, const py::object& parameters,
                                              const py::object& metrics, const py::object& metadata, bool overwrite,
                                              int64_t keep, const std::string& keep_best) {
  backends::validate_model_name(model_id);
  if (epoch < 0) {
    throw UsageError(fmt::format("epoch: must be non-negative, got {}", epoch));
  }
  if (keep != -1 && keep < 1) {
    throw UsageError(fmt::format("keep: must be at least 1, got {}", keep));
  }
  const auto policy = training::RetentionPolicy::parse(keep == -1 ? 0 : keep, keep_best);
  backends::Checkpoint cp;
  cp.model = model_id;
  cp.epoch = epoch;
  cp.overwrite = overwrite;
  cp.metadata = to_json_object(metadata, "metadata");
  std::vector<py::array> held;  // the arrays' memory, viewed by cp.arrays during the save
  auto add = [&](const std::string& name, py::handle value) {
    const std::string what = name == "parameters" ? name : fmt::format("parameters[\"{}\"]", name);
    if (name.empty()) {
      throw UsageError("parameters: array names must not be empty");
    }
    held.push_back(contiguous(value, what));
    cp.arrays.emplace(name, array_view(held.back(), what));
  };
  if (py::isinstance<py::dict>(parameters)) {
    for (const auto& [k, v] : parameters.cast<py::dict>()) {
      if (!py::isinstance<py::str>(k)) {
        throw UsageError(fmt::format("parameters: array names must be strings, got {}", type_name(k)));
      }
      add(k.cast<std::string>(), v);
    }
  } else {
    add("parameters", parameters);
  }
  if (!metrics.is_none()) {
    if (!py::isinstance<py::dict>(metrics)) {
      throw UsageError(fmt::format("metrics: expected a dict of name: number, got {}", type_name(metrics)));
    }
    for (const auto& [k, v] : metrics.cast<py::dict>()) {
      if (!py::isinstance<py::str>(k) || py::isinstance<py::str>(v) || !py::hasattr(v, "__float__")) {
        throw UsageError(
            fmt::format("metrics: {}: expected a number, got {}", py::repr(k).cast<std::string>(), type_name(v)));
      }
      cp.metrics[k.cast<std::string>()] = py::float_(py::reinterpret_borrow<py::object>(v)).cast<double>();
    }
  }
  return locked(*m_state, [&](backends::Backend& backend) {
    const std::string path = backend.checkpoints().save_checkpoint(cp);
    if (!policy.empty()) {
      training::apply_retention(backend, model_id, policy);
    }
    return path;
  });
}

py::dict ClassicalBackend::load_checkpoint(const std::string& checkpoint_path) {
  backends::CheckpointRef::parse(checkpoint_path);
  auto cp = locked(*m_state,
                   [&](backends::Backend& backend) { return backend.checkpoints().load_checkpoint(checkpoint_path); });
  py::dict arrays;
  for (auto& [name, array] : cp.arrays) {
    arrays[py::str(name)] = to_numpy(std::move(array));
  }
  py::dict metrics;
  for (const auto& [k, v] : cp.metrics) {
    metrics[py::str(k)] = v;
  }
  py::dict out;
  out["path"] = backends::checkpoint_path(cp.model, cp.epoch);
  out["model"] = cp.model;
  out["epoch"] = cp.epoch;
  out["parameters"] = arrays.contains("parameters") ? py::object(arrays["parameters"]) : py::none();
  out["arrays"] = arrays;
  out["metrics"] = metrics;
  out["metadata"] = from_json(cp.metadata);
  out["created_at"] = cp.created_at;
  return out;
}

py::list ClassicalBackend::list_checkpoints(const std::string& model_id) {
  auto list =
      locked(*m_state, [&](backends::Backend& backend) { return backend.checkpoints().list_checkpoints(model_id); });
  py::list out;
  for (const auto& c : list) {
    out.append(from_json(commands::checkpoint_info_json(c)));
  }
  return out;
}

void ClassicalBackend::insert_vector(const std::string& id, const py::object& vector, const py::object& metadata,
                                     const std::string& dataset, bool upsert) {
  py::list ids;
  ids.append(id);
  py::list md;
  md.append(metadata);
  const py::array one = py::module_::import("numpy").attr("expand_dims")(contiguous(vector, "vector"), 0);
  write_vectors(dataset, ids, one, metadata.is_none() ? py::object(py::none()) : py::object(md), py::none(), !upsert,
                "vector");
}

void ClassicalBackend::batch_insert(const py::object& ids, const py::object& vectors, const py::object& metadata,
                                    const std::string& dataset, const py::object& labels) {
  py::object stacked = vectors;
  if (py::isinstance<py::list>(vectors) || py::isinstance<py::tuple>(vectors)) {
    if (py::len(vectors) == 0) {
      throw UsageError("vectors: empty list");
    }
    stacked = py::module_::import("numpy").attr("stack")(vectors);
  }
  write_vectors(dataset, ids, stacked, metadata, labels, false, "vectors");
}

void ClassicalBackend::write_vectors(const std::string& dataset, const py::object& ids_obj, const py::object& vectors,
                                     const py::object& metadata, const py::object& labels, bool refuse_existing,
                                     const std::string& what) {
  const std::string ds = dataset_or_default(dataset);
  const auto ids = string_list(ids_obj, "ids");
  check_ids(ids, "ids");
  py::array v = contiguous(vectors, what);
  if (v.ndim() < 2 || v.shape(0) != static_cast<py::ssize_t>(ids.size())) {
    throw UsageError(fmt::format("{}: {} vectors for {} ids", what, v.ndim() < 1 ? 0 : v.shape(0), ids.size()));
  }
  std::vector<nlohmann::json> md(ids.size());
  if (!metadata.is_none()) {
    if (!py::isinstance<py::list>(metadata) && !py::isinstance<py::tuple>(metadata)) {
      throw UsageError(fmt::format("metadata: expected a list of dicts, got {}", type_name(metadata)));
    }
    if (py::len(metadata) != ids.size()) {
      throw UsageError(fmt::format("metadata: {} entries for {} ids", py::len(metadata), ids.size()));
    }
    size_t i = 0;
    for (const auto& m : metadata) {
      md[i++] = m.is_none() ? nlohmann::json() : to_json_object(py::reinterpret_borrow<py::object>(m), "metadata");
    }
  }
  auto existing = locked(*m_state, [&](backends::Backend& backend) { return backend.dataset_info(ds); });
  backends::DatasetSpec spec;
  if (existing) {
    spec = existing->spec;
  } else {
    spec.name = ds;
    spec.dtype = dtype_of(v.dtype(), what);
    spec.row_shape = Shape(v.shape() + 1, v.shape() + v.ndim());
    spec.metric = metric_of(m_state->profile, "");
  }
  v = fit_rows(v, spec.dtype, spec.row_shape, spec, what);
  check_finite(array_view(v, what), what);
  std::optional<py::array> l;
  if (!labels.is_none()) {
    l = contiguous(labels, "labels");
    if (!existing) {
      spec.label_dtype = dtype_of(l->dtype(), "labels");
      spec.label_shape = Shape(l->shape() + std::min<py::ssize_t>(l->ndim(), 1), l->shape() + l->ndim());
    } else if (!spec.label_dtype) {
      throw UsageError(fmt::format("labels: dataset \"{}\" has no labels", ds));
    }
    l = fit_rows(*l, *spec.label_dtype, spec.label_shape, spec, "labels");
  } else if (spec.label_dtype) {
    throw UsageError(fmt::format("dataset \"{}\" has labels: pass labels=", ds));
  }
  backends::RowBatch batch;
  batch.ids = ids;
  batch.data = array_view(v, what);
  if (l) {
    batch.labels = array_view(*l, "labels");
  }
  batch.metadata = std::move(md);
  locked(*m_state, [&](backends::Backend& backend) {
    if (!existing) {
      backend.create_dataset(spec);
    }
    if (refuse_existing) {
      const auto found = backend.fetch(ds, ids);
      if (!found.ids.empty()) {
        throw ConflictError(fmt::format("dataset \"{}\": id \"{}\" already exists (pass upsert=True to replace it)", ds,
                                        found.ids.front()));
      }
    }
    backend.write_rows(ds, batch);
  });
}

py::list ClassicalBackend::query(const py::object& query_vector, int64_t top_k, const py::object& filter,
                                 const std::string& dataset, bool include_values, bool include_metadata) {
  const std::string ds = dataset_or_default(dataset);
  commands::check_range("top_k", top_k, 1, 100000);
  const py::array q = contiguous(
      py::module_::import("numpy").attr("ravel")(contiguous(query_vector, "query_vector")).attr("astype")("float32"),
      "query_vector");
  const std::vector<float> values(q.data() ? static_cast<const float*>(q.data()) : nullptr,
                                  static_cast<const float*>(q.data()) + q.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      throw UsageError(fmt::format("query_vector: element {} is not finite", i));
    }
  }
  std::optional<Filter> f;
  if (py::isinstance<py::str>(filter)) {
    f = Filter::parse(filter.cast<std::string>());
  } else if (!filter.is_none()) {
    f = Filter::from_json(to_json_object(filter, "filter"));
  }
  backends::QueryOptions qo;
  qo.top_k = top_k;
  qo.filter = f ? &*f : nullptr;
  qo.include_values = include_values;
  qo.include_metadata = include_metadata;
  auto hits = locked(*m_state, [&](backends::Backend& backend) {
    const auto info = commands::require_dataset(backend, ds);
    commands::check_dimension(info.spec, values.size(), "query_vector");
    return backend.query(ds, values, qo);
  });
  py::list out;
  for (auto& h : hits) {
    QueryResult r{h.id, h.index, h.score, from_json(h.metadata), py::none()};
    if (h.values) {
      Array a(DType::f32, {static_cast<int64_t>(h.values->size())});
      std::copy(h.values->begin(), h.values->end(), a.as<float>());
      r.values = to_numpy(std::move(a));
    }
    out.append(py::cast(std::move(r)));
  }
  return out;
}

void ClassicalBackend::update_vector(const std::string& id, const py::object& vector, const py::object& metadata,
                                     const std::string& dataset) {
  const std::string ds = dataset_or_default(dataset);
  if (vector.is_none() && metadata.is_none()) {
    throw UsageError("update_vector: nothing to do: pass vector or metadata");
  }
  std::optional<nlohmann::json> md;
  if (!metadata.is_none()) {
    md = to_json_object(metadata, "metadata");
  }
  std::optional<py::array> v;
  std::optional<Array> sample;
  if (!vector.is_none()) {
    const auto info =
        locked(*m_state, [&](backends::Backend& backend) { return commands::require_dataset(backend, ds); });
    const py::array one = py::module_::import("numpy").attr("expand_dims")(contiguous(vector, "vector"), 0);
    v = fit_rows(one, info.spec.dtype, info.spec.row_shape, info.spec, "vector");
    check_finite(array_view(*v, "vector"), "vector");
    v = contiguous(v->attr("reshape")(py::tuple(py::cast(info.spec.row_shape))), "vector");
    sample = array_view(*v, "vector");
  }
  locked(*m_state, [&](backends::Backend& backend) { backend.update_row(ds, id, sample, md); });
}

void ClassicalBackend::delete_vector(const std::string& id, const std::string& dataset, bool ignore_missing) {
  const std::string ds = dataset_or_default(dataset);
  const int64_t n = locked(*m_state, [&](backends::Backend& backend) {
    commands::require_dataset(backend, ds);
    return backend.delete_ids(ds, {id});
  });
  if (n == 0 && !ignore_missing) {
    throw NotFoundError(
        fmt::format("dataset \"{}\": no row with id \"{}\" (ignore_missing=True accepts that)", ds, id));
  }
}

py::dict ClassicalBackend::get_statistics() {
  const auto stats = locked(*m_state, [&](backends::Backend& backend) { return backend.stats(); });
  auto datasets = nlohmann::json::array();
  for (const auto& d : stats.datasets) {
    datasets.push_back(commands::dataset_json(d));
  }
  const nlohmann::json j = {{"backend", stats.backend},
                            {"location", stats.location},
                            {"store_bytes", stats.store_bytes},
                            {"datasets", datasets},
                            {"checkpoints_per_model", stats.checkpoints_per_model},
                            {"extra", stats.extra}};
  return from_json(j);
}

}  // namespace vstash::python
