// SPDX-License-Identifier: MIT
// Checkpoints over a store of small records (Qdrant points, Pinecone records), for stores
// with no transaction and a size limit per record.
//
// Checkpoint MODEL@EPOCH is a manifest record "m:MODEL@EPOCH" (model, epoch, token, arrays,
// metrics, metadata, created_at, bytes) plus each array's rowcodec bytes cut into chunk
// records "c:MODEL@EPOCH:TOKEN:A:C" (field "blob", base64). Chunks are written first, under a
// fresh TOKEN; the manifest is written last and names the token, so a reader sees the old
// checkpoint or the new one, never a mix; the replaced chunks are deleted afterwards.
// MODEL@latest is the highest epoch among the model's manifests at read time, so it only
// moves forward however many processes save at once. Record fields are flat (Pinecone
// metadata holds nothing deeper), so arrays, metrics and metadata are kept as JSON text.
//
// A save without overwrite must not replace a stored MODEL@EPOCH, and of several processes
// saving a new one at once exactly one may win; neither store has a conditional write that
// both support, so savers take tickets as in Lamport's bakery algorithm, in claim records
// "k:MODEL@EPOCH:TOKEN" (model, epoch, token, ticket, at): a saver writes its claim with
// ticket 0 ("choosing"), reads the other claims, writes ticket 1 + the highest it saw, waits
// (bounded) until no other claim is choosing, then reads the claims and after them the
// manifest: it wins if the manifest is absent and no claim has a lower (ticket, token). The
// winner writes chunks and manifest, then removes its claim; losers remove theirs. The
// winner renews its claim's time while it writes; a claim not renewed for ten minutes is a
// crashed saver's and is ignored.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.hpp"
#include "backends/checkpointstore.hpp"

namespace vstash::backends::chunked {

// How one store keeps records; keys are the logical ones above, each store maps them to its
// own ids.
struct RecordStore {
  std::string location;    // for error messages
  size_t chunk_bytes = 0;  // raw bytes per chunk record (base64 makes it 4/3 larger)
  // Writes the records (key, fields) in the order given; returns once they are stored.
  std::function<void(const std::vector<std::pair<std::string, json>>&)> put;
  // The fields of those of `keys` that exist, by key.
  std::function<std::map<std::string, json>(const std::vector<std::string>& keys)> get;
  // The fields of every manifest of `model` (of all models when empty), in any order.
  std::function<std::vector<json>(const std::string& model)> manifests;
  // The fields of every claim record of `model`, in any order.
  std::function<std::vector<json>(const std::string& model)> claims;
  std::function<void(const std::vector<std::string>& keys)> remove;
  // Waits until this process's writes are visible to readers (eventually consistent stores).
  std::function<void()> settle = [] {};
};

// Throws ConflictError when MODEL@EPOCH exists (or another process wins the race to save
// it) unless checkpoint.overwrite.
std::string save(RecordStore& store, const Checkpoint& checkpoint);
Checkpoint load(RecordStore& store, const std::string& path);
std::vector<CheckpointInfo> list(RecordStore& store, const std::string& model);
bool remove(RecordStore& store, const std::string& path);

// The checkpoint store over a store's records: the functions above as a CheckpointStore,
// held by a backend and returned from its checkpoints(). Safe to use from several threads
// when the record operations are.
class ChunkedCheckpoints final : public CheckpointStore {
 public:
  explicit ChunkedCheckpoints(RecordStore store) : m_store(std::move(store)) {}

  std::string save_checkpoint(const Checkpoint& checkpoint) override { return save(m_store, checkpoint); }
  Checkpoint load_checkpoint(const std::string& path) override { return load(m_store, path); }
  std::vector<CheckpointInfo> list_checkpoints(const std::string& model) override { return list(m_store, model); }
  bool delete_checkpoint(const std::string& path) override { return remove(m_store, path); }

 private:
  RecordStore m_store;
};

// "m:MODEL@EPOCH": the stores' listing filters by this prefix or by the manifest's fields.
std::string manifest_key(const std::string& model, int64_t epoch);

}  // namespace vstash::backends::chunked
