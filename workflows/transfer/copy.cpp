// SPDX-License-Identifier: MIT
#include "workflows/transfer/copy.hpp"

#include <fmt/format.h>
#include <algorithm>

#include "backends/common/catalog.hpp"
#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "workflows/ingest/pipeline.hpp"

namespace vstash::transfer {

using backends::DatasetSpec;
using backends::RowBatch;

bool is_bookkeeping_key(const std::string& key) {
  return key == "ingest_watermark" || key == "ingest_base" || key == "ingest_world_size" ||
         key.rfind("ingest_watermark_rank_", 0) == 0 || key.rfind("copy_", 0) == 0;
}

namespace {

void require_compatible(const backends::DatasetInfo& dst, const backends::DatasetInfo& src,
                        const std::string& dst_name) {
  if (!backends::catalog::compatible(dst.spec, src.spec)) {
    throw ConflictError(fmt::format("{} is {}, the source is {} (use --replace to replace it)", dst_name,
                                    backends::catalog::describe(dst.spec), backends::catalog::describe(src.spec)));
  }
}

// The destination records a copy of this very source, of the same row count.
void require_same_source(const nlohmann::json& meta, const backends::DatasetInfo& src, const CopyRequest& request,
                         const std::string& dst_name) {
  const std::string recorded = meta.is_object() ? meta.value("copy_source", std::string()) : std::string();
  if (recorded != request.src_address) {
    throw ConflictError(fmt::format("{} is not an interrupted copy of \"{}\"{} (--resume continues only that)",
                                    dst_name, request.src_address,
                                    recorded.empty() ? "" : fmt::format(" but of \"{}\"", recorded)));
  }
  const int64_t rows_then = meta.value("copy_source_rows", int64_t{-1});
  if (rows_then != src.rows) {
    throw ConflictError(
        fmt::format("source \"{}\" has {} rows, {} when the copy began: it changed, so the resume "
                    "point no longer holds (use --replace to copy again)",
                    request.src_address, src.rows, rows_then));
  }
}

// Rank R of W: its slice, its start in a destination other ranks may be filling, its own resume point.
void plan_sharded(CopyPlan& plan, const backends::DatasetInfo& src, const std::optional<backends::DatasetInfo>& dst,
                  const CopyRequest& request, const std::string& dst_name) {
  if (request.append || request.replace) {
    throw UsageError(fmt::format("copy --rank: not with --{} (ranks share one destination and its indices)",
                                 request.append ? "append" : "replace"));
  }
  const ingest::Slice slice = ingest::slice_rows(src.rows, request.shard);
  plan.first = slice.begin;
  plan.start = slice.begin;
  plan.total = slice.end;
  plan.watermark_key = ingest::watermark_key(request.shard);
  if (dst) {
    plan.exists = true;
    require_compatible(*dst, src, dst_name);
    if (dst->rows > 0 || dst->spec.metadata.contains(ingest::k_world_size_key)) {
      require_same_source(dst->spec.metadata, src, request, dst_name);
    }
    plan.start = ingest::sharded_start(*dst, request.shard, slice, request.resume, "copy");
  }
  plan.spec.metadata["copy_source"] = request.src_address;
  plan.spec.metadata["copy_source_rows"] = src.rows;
  plan.spec.metadata["copy_base"] = 0;
  plan.spec.metadata[ingest::k_world_size_key] = request.shard.world_size;
  plan.spec.metadata[plan.watermark_key] = plan.start;
}

}  // namespace

CopyPlan plan_copy(const backends::DatasetInfo& src, const std::optional<backends::DatasetInfo>& dst,
                   const CopyRequest& request) {
  if (int(request.append) + int(request.replace) + int(request.resume) > 1) {
    throw UsageError("copy: --append, --replace and --resume exclude each other");
  }
  CopyPlan plan;
  plan.total = src.rows;
  plan.block_rows = request.block_rows > 0 ? request.block_rows : ingest::default_block_rows(src.spec);
  plan.spec = src.spec;
  plan.spec.name = request.dst_dataset;
  plan.spec.metadata = nlohmann::json::object();
  if (src.spec.metadata.is_object()) {
    for (const auto& [k, v] : src.spec.metadata.items()) {
      if (!is_bookkeeping_key(k)) {
        plan.spec.metadata[k] = v;
      }
    }
  }
  const std::string dst_name =
      fmt::format("destination \"{}\"", request.dst_address.empty() ? request.dst_dataset : request.dst_address);
  if (request.shard.sharded()) {
    plan_sharded(plan, src, dst, request, dst_name);
    return plan;
  }
  if (dst && request.replace) {
    plan.drop_first = true;
  } else if (dst) {
    plan.exists = true;
    require_compatible(*dst, src, dst_name);
    const auto& meta = dst->spec.metadata;
    if (request.resume) {
      require_same_source(meta, src, request, dst_name);
      plan.start = std::clamp<int64_t>(meta.value("ingest_watermark", int64_t{0}), 0, src.rows);
      plan.base = meta.value("copy_base", int64_t{0});
    } else if (request.append) {
      plan.base = dst->next_index;
    } else if (dst->rows > 0) {
      throw ConflictError(
          fmt::format("{} already has {} rows: pass --append to add the source's rows after them, "
                      "--replace to replace it, or --resume to finish an interrupted copy",
                      dst_name, dst->rows));
    }
  }
  plan.spec.metadata["copy_source"] = request.src_address;
  plan.spec.metadata["copy_source_rows"] = src.rows;
  plan.spec.metadata["copy_base"] = plan.base;
  plan.spec.metadata["ingest_watermark"] = plan.start;
  return plan;
}

std::optional<std::string> make_exact(const std::string& dst_kind, const std::string& dataset, RowBatch& batch,
                                      bool lossy_metadata, int64_t* lossy_rows) {
  // The registry knows what each store cannot keep; a store with no such rule (local, Redis:
  // exact blobs and JSON text) takes anything.
  const backends::BackendEntry* store = backends::find_backend(dst_kind);
  if (!store || !store->inexact_row) {
    return std::nullopt;
  }
  DatasetSpec spec;
  spec.dtype = batch.data.dtype();
  const Shape rs = batch.data.row_shape();
  spec.row_shape = rs;
  for (size_t i = 0; i < batch.size(); ++i) {
    bool metadata_only = false;
    const std::string what = store->inexact_row(spec, batch, i, metadata_only);
    if (what.empty()) {
      continue;
    }
    if (lossy_metadata && metadata_only) {
      batch.metadata[i] = nullptr;
      if (lossy_rows != nullptr) {
        ++*lossy_rows;
      }
      continue;
    }
    return fmt::format("dataset \"{}\": row \"{}\" (index {}): {} cannot keep it exactly: {}{}", dataset,
                       batch.ids[i].substr(0, 80), i < batch.indices.size() ? batch.indices[i] : -1, dst_kind, what,
                       metadata_only ? " (--allow-lossy metadata copies such rows without their metadata)" : "");
  }
  return std::nullopt;
}

namespace {

// Source positions [first, first + count) with their indices shifted by plan.base, checked
// for the destination.
RowBatch read_block(backends::Backend& src, const CopyPlan& plan, const CopyRequest& request, int64_t first,
                    int64_t count, int64_t* lossy_rows) {
  RowBatch b = src.read_rows(request.src_dataset, first, count);
  if (static_cast<int64_t>(b.size()) != count) {
    throw Error(
        fmt::format("source \"{}\": {} rows at position {} read back as {}: the dataset changed during the copy "
                    "(run it again with --resume once it is stable)",
                    request.src_address, count, first, b.size()));
  }
  for (auto& index : b.indices) {
    index += plan.base;
  }
  if (b.metadata.size() != b.size()) {
    b.metadata.resize(b.size());
  }
  if (auto problem = make_exact(request.dst_kind, request.dst_dataset, b, request.lossy_metadata, lossy_rows)) {
    throw UsageError(*problem);
  }
  return b;
}

int64_t batch_bytes(const RowBatch& b) {
  return static_cast<int64_t>(b.data.nbytes() + (b.labels ? b.labels->nbytes() : 0));
}

}  // namespace

CopyStats run_copy(backends::Backend& src, backends::Backend& dst, const std::vector<backends::Backend*>& writers,
                   const CopyPlan& plan, const CopyRequest& request, const std::function<void(int64_t)>& progress) {
  if (plan.drop_first) {
    dst.drop_dataset(plan.spec.name);
  }
  dst.create_dataset(plan.spec);
  ingest::IngestPlan ip;
  ip.spec = plan.spec;
  ip.start = plan.start;
  ip.total = plan.total;
  ip.batch_size = plan.block_rows;
  ip.base = plan.base;
  ip.watermark_key = plan.watermark_key;
  CopyStats stats;
  // Only the pipeline's reader thread touches these.
  int64_t bytes = 0;
  int64_t lossy = 0;
  ingest::run_pipeline(
      [&](int64_t first, int64_t count) {
        RowBatch b = read_block(src, plan, request, first, count, &lossy);
        bytes += batch_bytes(b);
        return b;
      },
      ip, writers, progress);
  stats.rows = plan.total - plan.start;
  stats.bytes = bytes;
  stats.lossy_rows = lossy;
  return stats;
}

std::optional<std::string> scan_exactness(backends::Backend& src, const CopyPlan& plan, const CopyRequest& request,
                                          const std::function<void(int64_t)>& progress) {
  int64_t lossy = 0;
  for (int64_t first = plan.start; first < plan.total; first += plan.block_rows) {
    const int64_t count = std::min(plan.block_rows, plan.total - first);
    try {
      read_block(src, plan, request, first, count, &lossy);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    progress(first + count - plan.start);
  }
  return std::nullopt;
}

}  // namespace vstash::transfer
