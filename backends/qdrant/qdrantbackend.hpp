// SPDX-License-Identifier: MIT
// The qdrant store. Only the factory is public; QdrantBackend is declared in qdrantstore.hpp.
#pragma once

#include <memory>

#include "backends/backend.hpp"

namespace vstash::backends::qdrant {

// Builds the backend from a profile of type "qdrant". Connects lazily or eagerly as documented
// in qdrantbackend.cpp; throws UsageError for a bad profile value.
std::unique_ptr<Backend> create(const Profile& profile);

}  // namespace vstash::backends::qdrant
