// SPDX-License-Identifier: MIT
#include "workflows/transfer/checkpoints.hpp"

#include <fmt/format.h>
#include <set>

#include "src/errors.hpp"

namespace vstash::transfer {

CheckpointCopy copy_checkpoints(backends::Backend& src, backends::Backend& dst, const std::string& model,
                                ExistingCheckpoint existing, bool dry_run, const std::string& src_label) {
  if (!model.empty()) {
    backends::validate_model_name(model);
  }
  const auto wanted = src.checkpoints().list_checkpoints(model);
  if (wanted.empty()) {
    throw NotFoundError(model.empty() ? fmt::format("{}: no checkpoints", src_label)
                                      : fmt::format("{}: no checkpoints of model \"{}\"", src_label, model));
  }
  std::set<std::string> there;
  for (const auto& c : dst.checkpoints().list_checkpoints(model)) {
    there.insert(c.path);
  }
  CheckpointCopy out;
  for (const auto& c : wanted) {
    if (there.count(c.path) != 0 && existing == ExistingCheckpoint::conflict) {
      throw ConflictError(
          fmt::format("destination already has checkpoint \"{}\" (use --replace to overwrite, "
                      "--resume to skip the checkpoints already there)",
                      c.path));
    }
  }
  for (const auto& c : wanted) {  // by model, then epoch ascending: latest moves forward
    if (there.count(c.path) != 0 && existing == ExistingCheckpoint::skip) {
      out.skipped.push_back(c.path);
      continue;
    }
    if (!dry_run) {
      backends::Checkpoint cp = src.checkpoints().load_checkpoint(c.path);
      for (const auto& [name, a] : cp.arrays) {
        out.bytes += static_cast<int64_t>(a.nbytes());
      }
      cp.overwrite = existing == ExistingCheckpoint::overwrite;
      dst.checkpoints().save_checkpoint(cp);
    } else {
      out.bytes += c.bytes;
    }
    out.copied.push_back(c.path);
  }
  return out;
}

}  // namespace vstash::transfer
