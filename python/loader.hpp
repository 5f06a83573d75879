// SPDX-License-Identifier: MIT
// vstash.DataLoader: the C++ training data loader (workflows/training/dataloader.hpp) as a Python
// iterable. Worker threads, each with its own connection, prefetch into a bounded queue; the
// batch sequence is the one `vstash batch --stream` writes for the same arguments.
// Iterating starts the current epoch over (or resumes where load_state_dict says); waiting
// for a batch releases the GIL and wakes every 20 ms for Ctrl-C (KeyboardInterrupt; the
// batch in flight is kept and delivered by the next __next__).
#pragma once

#include <future>
#include <memory>
#include <optional>

#include "python/store.hpp"
#include "workflows/training/dataloader.hpp"

namespace vstash::python {

class PyDataLoader {
 public:
  PyDataLoader(std::shared_ptr<StoreState> store, std::string dataset, training::LoaderOptions options);
  ~PyDataLoader();

  PyDataLoader& iter();
  py::tuple next();
  int64_t len();
  void set_epoch(int64_t epoch);
  py::dict state_dict() const;
  void load_state_dict(const py::dict& state);
  int64_t epoch() const { return m_options.epoch; }
  std::string repr() const;

 private:
  void restart(int64_t start_position);  // a new C++ loader for the current epoch
  void finish_pending();                 // waits (without the GIL) for a next() in flight
  // (data, labels) as numpy arrays owning the batch's buffers; StopIteration at the end.
  static py::tuple to_tuple(std::optional<backends::RowBatch> batch);

  std::shared_ptr<StoreState> m_store;
  std::string m_dataset;
  training::LoaderOptions m_options;
  std::unique_ptr<training::DataLoader> m_loader;
  std::future<std::optional<backends::RowBatch>> m_pending;
  bool m_fresh = true;  // nothing taken since restart(): iter() keeps this loader
};

}  // namespace vstash::python
