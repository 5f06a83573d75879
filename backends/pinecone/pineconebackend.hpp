// SPDX-License-Identifier: MIT
// The pinecone store. Only the factory is public; PineconeBackend lives in pineconebackend.cpp.
#pragma once

#include <memory>

#include "backends/backend.hpp"

namespace vstash::backends::pinecone {

// Builds the backend from a profile of type "pinecone". Connects lazily or eagerly as documented
// in pineconebackend.cpp; throws UsageError for a bad profile value.
std::unique_ptr<Backend> create(const Profile& profile);

}  // namespace vstash::backends::pinecone
