// SPDX-License-Identifier: MIT
// The pgvector store. Only the factory is public; PgvectorBackend is declared in pgvectorstore.hpp
// (internal to this folder), which lists the files that implement it.
#pragma once

#include <memory>

#include "backends/backend.hpp"

namespace vstash::backends::pgvector {

// Builds the backend from a profile of type "pgvector". Connects lazily or eagerly as documented
// in pgvectorstore.hpp; throws UsageError for a bad profile value.
std::unique_ptr<Backend> create(const Profile& profile);

}  // namespace vstash::backends::pgvector
