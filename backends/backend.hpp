// SPDX-License-Identifier: MIT
// The one interface every store implements: local (SQLite), pgvector, Redis, Qdrant and
// Pinecone. It carries the Classical Backend document's methods in C++ form. Behaviour
// common to all stores is specified here, in the contract comments, and checked once by
// tests/contract/, which runs against every backend.
//
// Data model
// - A dataset is a named, ordered set of rows. Each row has a string id (unique in the
//   dataset), a sample array (the dataset's dtype and row shape; its float32 view is the
//   vector that queries search), an optional label (the dataset's label dtype and shape) and
//   optional JSON object metadata.
// - Every row carries an index: its position in the file or insert order. Rows are read back
//   in index order, so a batch is addressed by offset. Deletes leave gaps; "position" below
//   means rank in index order among live rows.
// - A checkpoint is a model's state at an epoch: named arrays, scalar metrics and metadata.
//   Its reference ("path") is MODEL@EPOCH; MODEL@latest resolves to the highest epoch saved.
//
// Errors: backends throw vstash::Error subclasses (src/errors.hpp): NotFoundError for a
// missing dataset/checkpoint, ConflictError for a spec mismatch, RetryableError when the
// server is unreachable or rate-limits, UsageError for input the store cannot hold.
// Messages name the server (host:port, never a password) and the dataset.
#pragma once

#include <string>

#include "backends/checkpointstore.hpp"
#include "backends/progressstore.hpp"
#include "backends/rowstore.hpp"
#include "backends/storetypes.hpp"

namespace vstash::backends {

// What a profile opens: one store's rows, with its checkpoints and progress reports beside
// them. Code that needs only one of the three takes that interface.
class Backend : public RowStore {
 public:
  // "local", "pgvector", "redis", "qdrant", "pinecone".
  virtual std::string kind() const = 0;

  virtual CheckpointStore& checkpoints() = 0;
  virtual ProgressStore& progress() = 0;
};

}  // namespace vstash::backends
