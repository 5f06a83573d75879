// SPDX-License-Identifier: MIT
// The pgvector store's tables, named from the profile's table_name prefix P:
//   P_meta               key/value; layout_version says which layout the tables follow
//   P_datasets           catalog: one row per dataset (original name, spec, rows table, counters)
//   P_<name>_<hash>      one rows table per dataset: id, idx, embedding vector(d), exact sample
//                        bytea (only when dtype is not float32), label bytea, metadata jsonb
//   P_checkpoints, P_checkpoint_arrays, P_latest, P_progress
// Every identifier is quoted, so P and dataset names may hold quotes, semicolons or $$.
#pragma once

#include <optional>
#include <string>
#include <vector>

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
};

// Throws UsageError if the prefix is empty or too long for PostgreSQL's 63-byte names.
void check_prefix(const std::string& prefix);
Tables table_names(Session& s, const std::string& prefix);
// The rows table of a dataset (unquoted): P_<sanitized name>_<8 hex of a hash of the name>.
std::string rows_table_name(const std::string& prefix, const std::string& dataset);
// The ANN index of a rows table (unquoted).
std::string ann_index_name(const std::string& rows_table);

// Creates the extension (if it may) and the tables on first use, and checks the version.
void ensure_schema(Session& s, const Tables& t);

struct CatalogEntry {
  DatasetSpec spec;
  std::string table;  // unquoted rows table name
  int64_t rows = 0;
  int64_t next_index = 0;
};

// Catalog rows in the current transaction; for_update locks the row (serialises writers).
std::optional<CatalogEntry> read_catalog(Session& s, const Tables& t, const std::string& dataset,
                                         bool for_update = false);
std::vector<CatalogEntry> read_catalog_all(Session& s, const Tables& t);
// Inserts the catalog row and creates the rows table (inside the caller's transaction).
void create_catalog_entry(Session& s, const Tables& t, const DatasetSpec& spec);

// "float32 (128,) labels int64 () cosine": a spec for conflict messages.
std::string describe_spec(const DatasetSpec& spec);
bool specs_compatible(const DatasetSpec& a, const DatasetSpec& b);

}  // namespace vstash::backends::pgvector
