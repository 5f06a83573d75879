// SPDX-License-Identifier: MIT
// vstash.ClassicalBackend: the Classical Backend document's methods over one opened store.
// Every method converts its Python arguments first (with the GIL), then calls the C++
// library with the GIL released and the store's lock held (a Backend is not thread-safe).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backends/backend.hpp"
#include "python/convert.hpp"
#include "src/profile.hpp"

namespace vstash::python {

// What a store handle and its data loaders share (loaders keep it alive).
struct StoreState {
  Profile profile;
  ProfileFile file;
  std::unique_ptr<backends::Backend> backend;
  std::mutex mutex;

  // Opens another connection to the same store (data loader workers, parallel writers).
  std::unique_ptr<backends::Backend> connect(backends::Access access) const;
};

// Thrown (without the GIL) when PyErr_CheckSignals found a pending signal; the Python error
// is already set and is raised once the GIL is back.
struct PythonSignal : std::exception {};
// Checks for Ctrl-C from a thread that does not hold the GIL; throws PythonSignal.
void check_signals_released();

// One query hit (the document's QueryResult).
struct QueryResult {
  std::string id;
  int64_t index = -1;
  double score = 0;
  py::object metadata;  // dict, or None when not asked for or absent
  py::object values;    // float32 array when include_values, else None
};

class ClassicalBackend {
 public:
  // config: a profile name (looked up like the CLI's --profile in config_file, or the usual
  // files) or a dict of profile keys.
  ClassicalBackend(const py::object& config, const std::string& config_file, const std::string& dataset,
                   bool read_only);

  void store_training_data(const std::string& dataset_id, const py::object& data, const py::object& labels,
                           const py::object& metadata, const py::object& ids, const std::string& metric, bool append,
                           bool build_index);
  py::tuple load_training_batch(const std::string& dataset_id, int64_t batch_size, bool shuffle, int64_t offset,
                                uint64_t seed, int64_t epoch, int64_t rank, int64_t world_size,
                                const std::string& remainder);
  std::string save_checkpoint(const std::string& model_id, int64_t epoch, const py::object& parameters,
                              const py::object& metrics, const py::object& metadata, bool overwrite, int64_t keep,
                              const std::string& keep_best);
  py::dict load_checkpoint(const std::string& checkpoint_path);
  py::list list_checkpoints(const std::string& model_id);
  void insert_vector(const std::string& id, const py::object& vector, const py::object& metadata,
                     const std::string& dataset, bool upsert);
  void batch_insert(const py::object& ids, const py::object& vectors, const py::object& metadata,
                    const std::string& dataset, const py::object& labels);
  py::list query(const py::object& query_vector, int64_t top_k, const py::object& filter, const std::string& dataset,
                 bool include_values, bool include_metadata);
  void update_vector(const std::string& id, const py::object& vector, const py::object& metadata,
                     const std::string& dataset);
  void delete_vector(const std::string& id, const std::string& dataset, bool ignore_missing);
  py::dict get_statistics();

  std::string repr() const;
  py::object config() const;  // the profile with secrets shown as "***"
  std::string kind() const { return m_state->backend->kind(); }
  std::string default_dataset() const { return m_dataset; }
  const std::shared_ptr<StoreState>& state() const { return m_state; }

 private:
  std::string dataset_or_default(const std::string& dataset) const;
  // insert_vector and batch_insert: rows (n, ...) converted to the dataset's dtype and row
  // shape; creates the dataset from the first rows when it does not exist.
  void write_vectors(const std::string& dataset, const py::object& ids, const py::object& vectors,
                     const py::object& metadata, const py::object& labels, bool refuse_existing,
                     const std::string& what);

  std::shared_ptr<StoreState> m_state;
  std::string m_dataset;
};

}  // namespace vstash::python
