// SPDX-License-Identifier: MIT
// The extension module vstash._vstash (re-exported by the vstash package): vstash.open, the
// ClassicalBackend methods, DataLoader, QueryResult and the exception hierarchy that mirrors
// the CLI's exit codes (src/errors.hpp).
#include <pybind11/stl.h>

#include "commands/common.hpp"
#include "python/convert.hpp"
#include "python/loader.hpp"
#include "python/store.hpp"
#include "src/errors.hpp"
#include "workflows/training/selection.hpp"

namespace py = pybind11;
using vstash::python::ClassicalBackend;
using vstash::python::PyDataLoader;
using vstash::python::QueryResult;

namespace {

// The Python classes of the exit codes (module attributes, created at import).
struct Exceptions {
  PyObject* error = nullptr;
  PyObject* usage = nullptr;
  PyObject* retryable = nullptr;
  PyObject* not_found = nullptr;
  PyObject* conflict = nullptr;
};
Exceptions g_exceptions;

PyObject* make_exception(py::module_& m, const char* name, PyObject* base, vstash::ExitCode code, const char* doc) {
  PyObject* cls = PyErr_NewExceptionWithDoc((std::string("vstash.") + name).c_str(), doc, base, nullptr);
  if (cls == nullptr) {
    throw py::error_already_set();
  }
  py::handle(cls).attr("exit_code") = static_cast<int>(code);
  m.add_object(name, py::handle(cls));
  return cls;
}

void translate(std::exception_ptr p) {
  try {
    std::rethrow_exception(p);
  } catch (const vstash::Error& e) {
    PyObject* cls = g_exceptions.error;
    switch (e.code()) {
      case vstash::ExitCode::usage:
        cls = g_exceptions.usage;
        break;
      case vstash::ExitCode::retryable:
        cls = g_exceptions.retryable;
        break;
      case vstash::ExitCode::not_found:
        cls = g_exceptions.not_found;
        break;
      case vstash::ExitCode::conflict:
        cls = g_exceptions.conflict;
        break;
      case vstash::ExitCode::interrupted:
        cls = PyExc_KeyboardInterrupt;
        break;
      default:
        break;
    }
    PyErr_SetString(cls, e.what());
  }
}

// The loader's filter/split selection (workflows/training/selection.hpp), read once through the
// store's shared connection; null when neither is given.
std::shared_ptr<const std::vector<int64_t>> loader_selection(vstash::python::StoreState& state,
                                                             const std::string& dataset, const py::object& filter,
                                                             const std::string& split, const std::string& take,
                                                             uint64_t seed) {
  if (split.empty() != take.empty()) {
    throw vstash::UsageError(split.empty() ? "take: names a part of split, which is missing"
                                           : "split: needs take (the part to read, e.g. take='train')");
  }
  std::optional<vstash::Filter> f;
  if (py::isinstance<py::str>(filter)) {
    f = vstash::Filter::parse(filter.cast<std::string>());
  } else if (!filter.is_none()) {
    f = vstash::Filter::from_json(vstash::python::to_json_object(filter, "filter"));
  }
  std::optional<vstash::training::SplitSpec> parts;
  if (!split.empty()) {
    parts = vstash::training::parse_split(split, take);
  }
  if (!f && !parts) {
    return nullptr;
  }
  py::gil_scoped_release release;
  std::lock_guard lock(state.mutex);
  const auto info = vstash::commands::require_dataset(*state.backend, dataset);
  auto selected = vstash::training::select_positions(*state.backend, dataset, info, f ? &*f : nullptr,
                                                     parts ? &*parts : nullptr, seed);
  return std::make_shared<const std::vector<int64_t>>(std::move(*selected));
}

// vstash.ClassicalBackend.create_data_loader: the loader options from the keywords, checked.
std::unique_ptr<PyDataLoader> create_data_loader(ClassicalBackend& self, const std::string& dataset_id,
                                                 int64_t batch_size, bool shuffle, int num_workers, uint64_t seed,
                                                 int64_t epoch, int64_t rank, int64_t world_size, bool drop_last,
                                                 const std::string& remainder, int64_t prefetch,
                                                 const py::object& filter, const std::string& split,
                                                 const std::string& take, const std::string& order) {
  vstash::training::LoaderOptions o;
  o.order = vstash::training::parse_order_kind(order);
  o.batch_size = batch_size;
  o.shuffle = shuffle;
  o.num_workers = num_workers;
  o.seed = seed;
  o.epoch = epoch;
  o.rank = rank;
  o.world_size = world_size;
  o.drop_last = drop_last;
  o.pad_shards = vstash::training::parse_remainder_policy(remainder);
  o.prefetch = prefetch;
  // The CLI's bounds (batch --size, --workers): a typo must not allocate or spawn unbounded.
  vstash::commands::check_range("batch_size", batch_size, 1, int64_t{1} << 24);
  vstash::commands::check_range("num_workers", num_workers, 0, 64);
  vstash::backends::check_dataset_name(dataset_id);
  o.selection = loader_selection(*self.state(), dataset_id, filter, split, take, seed);
  return std::make_unique<PyDataLoader>(self.state(), dataset_id, std::move(o));
}

// The exception classes of the exit codes.
void bind_exceptions(py::module_& m) {
  g_exceptions.error = make_exception(m, "Error", PyExc_Exception, vstash::ExitCode::fatal,
                                      "Base class of every vstash error; exit_code is the CLI's exit status.");
  g_exceptions.usage = make_exception(m, "UsageError", g_exceptions.error, vstash::ExitCode::usage,
                                      "Bad input: argument, array, profile, filter or dimension (exit 2).");
  g_exceptions.retryable = make_exception(m, "RetryableError", g_exceptions.error, vstash::ExitCode::retryable,
                                          "Server unreachable, timeout or rate limit: may succeed later (exit 3).");
  g_exceptions.not_found = make_exception(m, "NotFoundError", g_exceptions.error, vstash::ExitCode::not_found,
                                          "Dataset, id, checkpoint or profile does not exist (exit 4).");
  g_exceptions.conflict = make_exception(m, "ConflictError", g_exceptions.error, vstash::ExitCode::conflict,
                                         "Already exists or incompatible dataset spec (exit 5).");
  py::register_exception_translator(&translate);
}

void bind_query_result(py::module_& m) {
  py::class_<QueryResult>(m, "QueryResult", "One nearest neighbour: id, score, index, metadata, values.")
      .def_readonly("id", &QueryResult::id, "The row's id.")
      .def_readonly("score", &QueryResult::score,
                    "cosine similarity or dot product (higher is closer), or L2 distance (lower is closer).")
      .def_readonly("index", &QueryResult::index, "The row's index (insert order).")
      .def_readonly("metadata", &QueryResult::metadata, "The row's metadata dict (None if left out).")
      .def_readonly("values", &QueryResult::values, "The row's vector as float32 (only with include_values=True).")
      .def("__repr__", [](const QueryResult& r) {
        return "QueryResult(id=" + py::repr(py::str(r.id)).cast<std::string>() +
               ", score=" + py::repr(py::float_(r.score)).cast<std::string>() + ", index=" + std::to_string(r.index) +
               ")";
      });
}

void bind_data_loader(py::module_& m) {
  py::class_<PyDataLoader>(
      m, "DataLoader",
      "Batches (data, labels) of one epoch (or one rank's shard), prefetched by C++ worker\n"
      "threads into a bounded queue. Iterating starts the epoch over; set_epoch(n) picks the\n"
      "epoch (a new shuffle each epoch); state_dict()/load_state_dict() resume at (epoch, batch).\n"
      "The sequence equals `vstash batch --stream` with the same arguments.")
      .def("__iter__", &PyDataLoader::iter, py::return_value_policy::reference_internal)
      .def("__next__", &PyDataLoader::next)
      .def("__len__", &PyDataLoader::len, "Batches in the epoch's shard.")
      .def("set_epoch", &PyDataLoader::set_epoch, py::arg("epoch"),
           "Use this epoch's order from the next iteration on (restarts at batch 0).")
      .def_property_readonly("epoch", &PyDataLoader::epoch)
      .def("state_dict", &PyDataLoader::state_dict,
           "{'epoch', 'batch', ...}: where the next batch would come from; save it with a checkpoint.")
      .def("load_state_dict", &PyDataLoader::load_state_dict, py::arg("state"),
           "Resume: the next iteration starts at state['batch'] of state['epoch'].")
      .def("__repr__", &PyDataLoader::repr);
}

// ClassicalBackend: the training-data and checkpoint methods.
py::class_<ClassicalBackend> bind_training_methods(py::module_& m) {
  py::class_<ClassicalBackend> cls(
      m, "ClassicalBackend",
      "An opened store (local, pgvector, redis, qdrant or pinecone): the Classical Backend\n"
      "methods. Create it with vstash.open(config).");
  cls.def("store_training_data", &ClassicalBackend::store_training_data, py::arg("dataset_id"), py::arg("data"),
          py::arg("labels"), py::arg("metadata") = py::none(), py::kw_only(), py::arg("ids") = py::none(),
          py::arg("metric") = "", py::arg("append") = false, py::arg("build_index") = false,
          "Store rows of `data` (n, ...) with `labels` (n, ...) or None as dataset `dataset_id`, in the arrays'\n"
          "dtypes and shapes; `metadata` is the dataset's metadata dict. Ids default to row numbers. An existing\n"
          "non-empty dataset is ConflictError unless append=True. NaN/Inf rows are UsageError. build_index=True\n"
          "also builds the store's search index, as `vstash ingest` does (off: training data is read in batches).")
      .def("load_training_batch", &ClassicalBackend::load_training_batch, py::arg("dataset_id"), py::arg("batch_size"),
           py::arg("shuffle") = true, py::arg("offset") = 0, py::kw_only(), py::arg("seed") = 0, py::arg("epoch") = 0,
           py::arg("rank") = 0, py::arg("world_size") = 1, py::arg("remainder") = "uneven",
           "(data, labels): up to batch_size rows from position `offset` of the epoch order (a seeded\n"
           "permutation when shuffled, the same as `vstash batch`). labels is None for a dataset without labels;\n"
           "past the end both are empty.")
      .def("save_checkpoint", &ClassicalBackend::save_checkpoint, py::arg("model_id"), py::arg("epoch"),
           py::arg("parameters"), py::arg("metrics"), py::arg("metadata") = py::none(), py::kw_only(),
           py::arg("overwrite") = false, py::arg("keep") = -1, py::arg("keep_best") = "",
           "Save `parameters` (an array, or a dict of named arrays such as optimizer state) with `metrics`\n"
           "{name: float} and `metadata`; returns 'MODEL@EPOCH'. An existing epoch is ConflictError unless\n"
           "overwrite=True. keep=N / keep_best='loss:min' prune older checkpoints after the save.")
      .def("load_checkpoint", &ClassicalBackend::load_checkpoint, py::arg("checkpoint_path"),
           "'MODEL@EPOCH' or 'MODEL@latest' -> {'parameters', 'arrays', 'epoch', 'metrics', 'metadata', 'model',\n"
           "'path', 'created_at'}; 'arrays' holds every named array.")
      .def("list_checkpoints", &ClassicalBackend::list_checkpoints, py::arg("model_id") = "",
           "Checkpoints of a model (all if empty): dicts like `vstash checkpoint list --json`.")
      .def("create_data_loader", &create_data_loader, py::arg("dataset_id"), py::arg("batch_size") = 32,
           py::arg("shuffle") = true, py::arg("num_workers") = 4, py::kw_only(), py::arg("seed") = 0,
           py::arg("epoch") = 0, py::arg("rank") = 0, py::arg("world_size") = 1, py::arg("drop_last") = false,
           py::arg("remainder") = "uneven", py::arg("prefetch") = 0, py::arg("filter") = py::none(),
           py::arg("split") = "", py::arg("take") = "", py::arg("order") = "strided",
           "A DataLoader over one epoch of dataset_id (rank's shard of world_size), num_workers C++ threads\n"
           "prefetching (0: load in __next__). remainder: 'uneven', 'drop' or 'pad' when world_size does not\n"
           "divide the rows. filter (dict or JSON, $label for the label) and split='train=0.8,val=0.2' with\n"
           "take='train' restrict the epoch to those rows (chosen when the loader is created), as `vstash\n"
           "batch --filter/--split/--take`. order='global': batch_size is the global batch size, the same\n"
           "for every world_size, each rank reading its share (`vstash batch --order global`).");
  return cls;
}

// ClassicalBackend: the vector methods and properties.
void bind_vector_methods(py::class_<ClassicalBackend>& cls) {
  cls.def("insert_vector", &ClassicalBackend::insert_vector, py::arg("id"), py::arg("vector"),
          py::arg("metadata") = py::none(), py::kw_only(), py::arg("dataset") = "", py::arg("upsert") = false,
          "Insert one vector (the dataset is created from it if missing). An existing id is ConflictError\n"
          "unless upsert=True.")
      .def("batch_insert", &ClassicalBackend::batch_insert, py::arg("ids"), py::arg("vectors"),
           py::arg("metadata") = py::none(), py::kw_only(), py::arg("dataset") = "", py::arg("labels") = py::none(),
           "Insert (upsert) many vectors: a list of arrays or one (n, ...) array, metadata a list of dicts.")
      .def("query", &ClassicalBackend::query, py::arg("query_vector"), py::arg("top_k") = 10,
           py::arg("filter") = py::none(), py::kw_only(), py::arg("dataset") = "", py::arg("include_values") = false,
           py::arg("include_metadata") = true,
           "The top_k nearest rows as a list of QueryResult, best first; `filter` is a metadata filter dict\n"
           "such as {'year': {'$gte': 2019}} (README 'Filters').")
      .def("update_vector", &ClassicalBackend::update_vector, py::arg("id"), py::arg("vector"),
           py::arg("metadata") = py::none(), py::kw_only(), py::arg("dataset") = "",
           "Replace a row's vector (None: keep it) and/or merge metadata keys (None values delete keys).\n"
           "A missing id is NotFoundError.")
      .def("delete_vector", &ClassicalBackend::delete_vector, py::arg("id"), py::kw_only(), py::arg("dataset") = "",
           py::arg("ignore_missing") = false,
           "Delete a row by id; a missing id is NotFoundError unless ignore_missing.")
      .def("get_statistics", &ClassicalBackend::get_statistics,
           "{'backend', 'location', 'store_bytes', 'datasets': [...], 'checkpoints_per_model', 'extra'} like\n"
           "`vstash stats --json`.")
      .def_property_readonly("kind", &ClassicalBackend::kind, "'local', 'pgvector', 'redis', 'qdrant' or 'pinecone'.")
      .def_property_readonly("dataset", &ClassicalBackend::default_dataset,
                             "The dataset the vector methods use when not given dataset=.")
      .def_property_readonly("config", &ClassicalBackend::config, "The profile's keys, secrets shown as '***'.")
      .def("__repr__", &ClassicalBackend::repr);
}

void bind_open(py::module_& m) {
  m.def(
      "open",
      [](const py::object& config, const std::string& config_file, const std::string& dataset, bool read_only) {
        return std::make_unique<ClassicalBackend>(config, config_file, dataset, read_only);
      },
      py::arg("config") = py::none(), py::kw_only(), py::arg("config_file") = "", py::arg("dataset") = "",
      py::arg("read_only") = false,
      "Open a store and return a ClassicalBackend.\n\n"
      "config: a profile name, looked up like the CLI's --profile (config_file, $VSTASH_CONFIG,\n"
      "./vstash.yaml, $XDG_CONFIG_HOME/vstash/config.yaml, /etc/vstash/config.yaml); None for the default\n"
      "profile; or a dict with the same keys as a YAML profile, validated the same way, e.g.\n"
      "  {'type': 'pinecone', 'api_key': KEY, 'environment': 'us-east-1', 'index_name': 'train',\n"
      "   'dimension': 768, 'metric': 'cosine'}\n"
      "  {'type': 'local', 'path': '/data/vstash.db'}\n"
      "dataset: the dataset the vector methods use by default (else the profile's).\n"
      "read_only: never create or write the store (a missing local store is NotFoundError).\n"
      "Errors: UsageError (bad profile), NotFoundError (unknown profile), RetryableError (server down).");
}

}  // namespace

PYBIND11_MODULE(_vstash, m) {
  m.doc() = "vstash: training data, checkpoints and vectors in vector databases (the C++ library's Python API)";
  bind_exceptions(m);
  bind_query_result(m);
  bind_data_loader(m);
  auto cls = bind_training_methods(m);
  bind_vector_methods(cls);
  bind_open(m);
  m.attr("__version__") = VSTASH_VERSION;
}
