// SPDX-License-Identifier: MIT
// STUB: replaced by the pgvector backend implementation.
#include "pgvectorbackend.hpp"

#include "../../src/errors.hpp"

namespace vstash::backends::pgvector {
std::unique_ptr<Backend> create(const Profile&) { throw Error("pgvector backend: not implemented yet"); }
}  // namespace vstash::backends::pgvector
