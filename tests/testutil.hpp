// SPDX-License-Identifier: MIT
// Helpers shared by the unit and contract tests.
#pragma once

#include <filesystem>
#include <random>
#include <string>

#include "src/array.hpp"

namespace vstash::testutil {

// A fresh directory under the per-process scratch root, removed at exit unless a test failed.
std::filesystem::path scratch_dir(const std::string& name);
// A name unique to this process and call, for datasets/models on shared servers.
std::string unique_name(const std::string& prefix);
// Deterministic random float32 rows.
Array random_f32(int64_t rows, int64_t dim, uint32_t seed);

}  // namespace vstash::testutil
