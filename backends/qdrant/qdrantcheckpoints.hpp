// SPDX-License-Identifier: MIT
// Checkpoints and training progress as points of two reserved Qdrant collections: the record
// operations that the shared checkpoint and progress stores (backends/common/
// chunkedcheckpoints.hpp, recordprogress.hpp) run on.
#pragma once

#include <string_view>

#include "backends/common/chunkedcheckpoints.hpp"
#include "backends/common/recordprogress.hpp"
#include "backends/qdrant/qdrantclient.hpp"

namespace vstash::backends::qdrant {

inline constexpr std::string_view k_checkpoint_collection = "__vstash_checkpoints";
inline constexpr std::string_view k_progress_collection = "__vstash_progress";

// The checkpoint records as points of __vstash_checkpoints; uses client by reference.
chunked::RecordStore checkpoint_records(RestClient& client);
// The progress records as points of __vstash_progress; uses client by reference.
records::ProgressRecords progress_records(RestClient& client);

}  // namespace vstash::backends::qdrant
