// SPDX-License-Identifier: MIT
// The pgvector store's tables, named from the profile's table_name prefix P:
//   P_meta               key/value; layout_version says which layout the tables follow
//   P_datasets           catalog: one row per dataset (original name, spec, rows table, counters);
//                        read and written through pgdatasets.hpp
//   P_<name>_<hash>      one rows table per dataset: id, idx, embedding vector(d), exact sample
//                        bytea (only when dtype is not float32), label bytea, metadata jsonb
//   P_checkpoints, P_checkpoint_arrays, P_latest, P_progress
// Every identifier is quoted, so P and dataset names may hold quotes, semicolons or $$.
#pragma once

#include <functional>
#include <string>

#include "backends/backend.hpp"
#include "backends/pgvector/pgconnection.hpp"

namespace vstash::backends::pgvector {

// The layout this binary writes and understands. A store with a higher version was written
// by a newer vstash and is refused.
inline constexpr int k_layout_version = 1;

// Vectors of up to this many dimensions (4 kB) are stored inside the row, not in TOAST. A
// physical choice only: tables made either way have the same layout version.
inline constexpr int k_inline_dimensions = 1024;

// Quoted names of the shared tables.
struct Tables {
  std::string prefix;  // unquoted
  std::string meta, datasets, checkpoints, arrays, latest, progress;
  bool citus = false;  // the citus extension is installed: rows tables are distributed (pgcitus.hpp)
};
// The shared tables, connecting and creating them on first use (the backend's tables()).
using TablesFn = std::function<const Tables&()>;

// Throws UsageError if the prefix is empty or too long for PostgreSQL's 63-byte names.
void check_prefix(const std::string& prefix);
Tables table_names(Session& s, const std::string& prefix);
// The rows table of a dataset (unquoted): P_<sanitized name>_<8 hex of a hash of the name>.
std::string rows_table_name(const std::string& prefix, const std::string& dataset);
// The ANN index of a rows table (unquoted).
std::string ann_index_name(const std::string& rows_table);

// Creates the extension (if it may) and the tables on first use, and checks the version.
void ensure_schema(Session& s, const Tables& t);

}  // namespace vstash::backends::pgvector
