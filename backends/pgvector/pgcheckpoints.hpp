// SPDX-License-Identifier: MIT
// Checkpoints and training progress in the pgvector store's shared tables (pgschema.hpp).
#pragma once

#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "backends/pgvector/pgconnection.hpp"
#include "backends/pgvector/pgschema.hpp"

namespace vstash::backends::pgvector::checkpoints {

std::string save(Session& s, const Tables& t, const Checkpoint& c);
Checkpoint load(Session& s, const Tables& t, const std::string& path);
std::vector<CheckpointInfo> list(Session& s, const Tables& t, const std::string& model);
bool remove(Session& s, const Tables& t, const std::string& path);
void record_progress(Session& s, const Tables& t, const ProgressRecord& r);
std::vector<ProgressRecord> list_progress(Session& s, const Tables& t, const std::string& run);

}  // namespace vstash::backends::pgvector::checkpoints
