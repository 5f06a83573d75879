// SPDX-License-Identifier: MIT
// STUB: replaced by the redis backend implementation.
#include "redisbackend.hpp"

#include "../../src/errors.hpp"

namespace vstash::backends::redis {
std::unique_ptr<Backend> create(const Profile&) { throw Error("redis backend: not implemented yet"); }
}  // namespace vstash::backends::redis
