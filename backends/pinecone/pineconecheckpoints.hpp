// SPDX-License-Identifier: MIT
// Checkpoints and training progress as records of the home index, kept by the shared record
// stores (backends/common/chunkedcheckpoints.hpp, recordprogress.hpp) that the backend holds
// and returns from its checkpoints() and progress().
#pragma once

#include "backends/common/chunkedcheckpoints.hpp"
#include "backends/common/recordprogress.hpp"
#include "backends/pinecone/pineconeindexes.hpp"

namespace vstash::backends::pinecone {

// The records of chunkedcheckpoints in namespace __vstash_checkpoints__: record id = key,
// metadata = fields.
chunked::RecordStore checkpoint_records(Indexes& indexes);
// The progress records ("RUN#RANK", hashed past 512 bytes) in namespace __vstash_progress__.
records::ProgressRecords progress_records(Indexes& indexes);

}  // namespace vstash::backends::pinecone
