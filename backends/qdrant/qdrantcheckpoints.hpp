// SPDX-License-Identifier: MIT
// Checkpoints and training progress as points of two reserved Qdrant collections.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.hpp"
#include "backends/qdrant/qdrantclient.hpp"

namespace vstash::backends::qdrant::checkpoints {

inline constexpr std::string_view k_checkpoint_collection = "__vstash_checkpoints";
inline constexpr std::string_view k_progress_collection = "__vstash_progress";

std::string save(RestClient& client, const Checkpoint& checkpoint);
Checkpoint load(RestClient& client, const std::string& path);
std::vector<CheckpointInfo> list(RestClient& client, const std::string& model);
bool remove(RestClient& client, const std::string& path);
void record_progress(RestClient& client, const ProgressRecord& record);
std::vector<ProgressRecord> list_progress(RestClient& client, const std::string& run);

}  // namespace vstash::backends::qdrant::checkpoints
