// SPDX-License-Identifier: MIT
// STUB: replaced by the pinecone backend implementation.
#include "pineconebackend.hpp"

#include "../../src/errors.hpp"

namespace vstash::backends::pinecone {
std::unique_ptr<Backend> create(const Profile&) { throw Error("pinecone backend: not implemented yet"); }
}  // namespace vstash::backends::pinecone
