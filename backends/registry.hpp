// SPDX-License-Identifier: MIT
// The one list of backends (registry.cpp k_backends): each store's type name, factory, the
// profile keys it accepts and the test server its suite needs. Profile validation
// (src/profile.hpp profile_schema), `vstash --version` and the cache tier read it; nothing
// else names a store.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.hpp"
#include "src/profile.hpp"

namespace vstash::backends {

using Factory = std::unique_ptr<Backend> (*)(const Profile&);

// A loopback server a backend's test suites start (tests/servers/*.sh): the environment
// variable naming its preferred port and the script's default for it.
struct TestPort {
  std::string_view env;
  int port = 0;
};

// What a store cannot keep bit for bit of row i of batch (copy's fidelity check,
// workflows/transfer/copy.cpp make_exact): "" if nothing, else "field: why"; metadata_only is
// set when dropping the row's metadata would make it fit.
using InexactRow = std::string (*)(const DatasetSpec& spec, const RowBatch& batch, size_t i, bool& metadata_only);

struct BackendEntry {
  std::string_view type;
  // Keys beside the common ones (profile_schema().common).
  std::vector<ProfileKey> keys;
  std::vector<TestPort> test_ports;  // the servers its suites start; none: the store needs no server
  // Null when the store is not compiled into this binary.
  Factory create = nullptr;
  // For Access::read_only, where the store opens otherwise; null: create serves both.
  Factory open_read_only = nullptr;
  // Null: the store keeps every row exactly.
  InexactRow inexact_row = nullptr;
  // The keys that say where the data lives: two profiles of this type with equal values of
  // these keys name one store (store_identity below).
  std::vector<std::string_view> location_keys;
};

// Every backend, compiled in or not, in display order.
const std::vector<BackendEntry>& backend_entries();
// The entry of `type`, or null.
const BackendEntry* find_backend(std::string_view type);

// Where a profile's data lives, as JSON: its type and its location keys' values (a "path" made
// canonical). Equal for two profiles that name one store: copy's same-store check and the
// cache tier's scope compare it.
nlohmann::json store_identity(const Profile& profile);

// Throws UsageError for an unknown or not-compiled-in type. If the profile names
// `cache: <redis profile>`, that profile is looked up in `file` and the primary is wrapped in
// the cache tier (redis/cachedbackend.hpp); without a file the cache key is an error, and so
// is the key in a binary built without Redis.
// access: see Access in backend.hpp.
std::unique_ptr<Backend> create_backend(const Profile& profile, const ProfileFile* file = nullptr,
                                        Access access = Access::read_write);
// Types compiled into this binary ("local", "pgvector", ...), for `vstash --version`: the
// entries of backend_entries() that have a factory.
std::vector<std::string> compiled_backends();

}  // namespace vstash::backends
