// SPDX-License-Identifier: MIT
// STUB: replaced by the qdrant backend implementation.
#include "qdrantbackend.hpp"

#include "../../src/errors.hpp"

namespace vstash::backends::qdrant {
std::unique_ptr<Backend> create(const Profile&) { throw Error("qdrant backend: not implemented yet"); }
}  // namespace vstash::backends::qdrant
