// SPDX-License-Identifier: MIT
#include "python/loader.hpp"

#include <fmt/format.h>
#include <chrono>

#include "src/errors.hpp"

namespace vstash::python {

PyDataLoader::PyDataLoader(std::shared_ptr<StoreState> store, std::string dataset, training::LoaderOptions options)
    : m_store(std::move(store)), m_dataset(std::move(dataset)), m_options(std::move(options)) {
  // Each worker reads through its own connection, like `vstash batch --stream`.
  auto* state = m_store.get();
  m_options.connect = [state] { return state->connect(backends::Access::read_only); };
  m_options.samples_only = true;  // Python gets (data, labels): no id lookups per row
  restart(m_options.start_position);
}

PyDataLoader::~PyDataLoader() {
  py::gil_scoped_release release;
  if (m_pending.valid()) {
    m_pending.wait();
  }
  m_loader.reset();  // joins the workers
}

void PyDataLoader::finish_pending() {
  if (m_pending.valid()) {
    py::gil_scoped_release release;
    m_pending.wait();
  }
  m_pending = {};
}

void PyDataLoader::restart(int64_t start_position) {
  finish_pending();
  m_options.start_position = start_position;
  py::gil_scoped_release release;
  m_loader.reset();
  // The constructor reads the dataset's info through the shared connection.
  std::lock_guard lock(m_store->mutex);
  m_loader = training::create_data_loader(*m_store->backend, m_dataset, m_options);
  m_fresh = true;
}

PyDataLoader& PyDataLoader::iter() {
  if (!m_fresh) {
    restart(0);
  }
  return *this;
}

py::tuple PyDataLoader::next() {
  m_fresh = false;
  std::optional<backends::RowBatch> batch;
  if (m_options.num_workers > 0) {
    // Workers prefetch: wait for the batch in slices (Ctrl-C is checked between them), then
    // take it in this thread; no thread is started per batch.
    for (;;) {
      bool ready = false;
      {
        py::gil_scoped_release release;
        ready = m_loader->wait_ready(std::chrono::milliseconds(20));
        if (ready) {
          batch = m_loader->next();  // returns at once; rethrows a worker's error
        }
      }
      if (ready) {
        break;
      }
      if (PyErr_CheckSignals() != 0) {
        throw py::error_already_set();
      }
    }
    return to_tuple(std::move(batch));
  }
  if (!m_pending.valid()) {
    auto* loader = m_loader.get();
    auto* state = m_store.get();
    const bool shared = m_options.num_workers == 0;  // loads in next(), on the shared connection
    m_pending = std::async(std::launch::async, [loader, state, shared] {
      if (shared) {
        std::lock_guard lock(state->mutex);
        return loader->next();
      }
      return loader->next();
    });
  }
  for (;;) {
    {
      py::gil_scoped_release release;
      if (m_pending.wait_for(std::chrono::milliseconds(20)) == std::future_status::ready) {
        break;
      }
    }
    if (PyErr_CheckSignals() != 0) {
      throw py::error_already_set();
    }
  }
  batch = m_pending.get();  // rethrows the worker's error
  return to_tuple(std::move(batch));
}

py::tuple PyDataLoader::to_tuple(std::optional<backends::RowBatch> batch) {
  if (!batch) {
    throw py::stop_iteration();
  }
  py::object labels = batch->labels ? py::object(to_numpy(std::move(*batch->labels))) : py::none();
  return py::make_tuple(to_numpy(std::move(batch->data)), labels);
}

int64_t PyDataLoader::len() { return m_loader->num_batches(); }

void PyDataLoader::set_epoch(int64_t epoch) {
  if (epoch < 0) {
    throw UsageError(fmt::format("set_epoch: epoch must not be negative, got {}", epoch));
  }
  m_options.epoch = epoch;
  restart(0);
}

py::dict PyDataLoader::state_dict() const {
  py::dict d;
  d["epoch"] = m_options.epoch;
  d["batch"] = m_loader->position();
  d["dataset"] = m_dataset;
  d["batch_size"] = m_options.batch_size;
  d["shuffle"] = m_options.shuffle;
  d["seed"] = m_options.seed;
  d["rank"] = m_options.rank;
  d["world_size"] = m_options.world_size;
  return d;
}

void PyDataLoader::load_state_dict(const py::dict& state) {
  if (!state.contains("epoch") || !state.contains("batch")) {
    throw UsageError("load_state_dict: expected a dict with \"epoch\" and \"batch\" (from state_dict())");
  }
  const auto epoch = state["epoch"].cast<int64_t>();
  const auto batch = state["batch"].cast<int64_t>();
  if (epoch < 0 || batch < 0) {
    throw UsageError(fmt::format("load_state_dict: epoch and batch must not be negative, got {} and {}", epoch, batch));
  }
  for (const char* key : {"batch_size", "seed", "world_size", "rank"}) {
    if (state.contains(key)) {
      const auto mine = py::cast(std::string(key) == "batch_size"   ? m_options.batch_size
                                 : std::string(key) == "world_size" ? m_options.world_size
                                 : std::string(key) == "rank"       ? m_options.rank
                                                                    : static_cast<int64_t>(m_options.seed));
      if (!py::object(state[key]).equal(mine)) {
        throw UsageError(fmt::format("load_state_dict: state has {} {}, this loader has {}", key,
                                     py::str(state[key]).cast<std::string>(), py::str(mine).cast<std::string>()));
      }
    }
  }
  m_options.epoch = epoch;
  restart(batch);
}

std::string PyDataLoader::repr() const {
  return fmt::format(
      "<vstash.DataLoader dataset \"{}\" epoch {} batch {} of {} (batch_size {}, shuffle {}, rank {} of {})>",
      m_dataset, m_options.epoch, m_loader->position(), m_loader->num_batches(), m_options.batch_size,
      m_options.shuffle ? "True" : "False", m_options.rank, m_options.world_size);
}

}  // namespace vstash::python
