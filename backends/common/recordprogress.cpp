// SPDX-License-Identifier: MIT
#include "backends/common/recordprogress.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "src/errors.hpp"

namespace vstash::backends::records {

namespace {

// Numbers may come back as floats (Pinecone keeps every number as a double).
int64_t integer(const json& fields, const char* name) {
  const auto it = fields.find(name);
  if (it == fields.end() || !it->is_number()) {
    return 0;
  }
  return it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
}

// Metrics as JSON text, or (older Qdrant points) as the object itself.
std::map<std::string, double> metrics_of(const json& fields) {
  const auto it = fields.find("metrics");
  if (it == fields.end() || it->is_null()) {
    return {};
  }
  if (!it->is_string()) {
    return metrics_from_json(*it);
  }
  const json parsed = json::parse(it->get<std::string>(), nullptr, false);
  return parsed.is_discarded() ? std::map<std::string, double>{} : metrics_from_json(parsed);
}

}  // namespace

std::string progress_key(const std::string& run, int64_t rank) { return fmt::format("{}#{}", run, rank); }

void RecordProgress::record_progress(const ProgressRecord& r) {
  if (r.run.empty()) {
    throw UsageError("progress: run name is empty");
  }
  const json fields = {{"run", r.run},
                       {"rank", r.rank},
                       {"epoch", r.epoch},
                       {"step", r.step},
                       {"metrics", metrics_to_json(r.metrics).dump()},
                       {"updated_at", now_rfc3339()}};
  m_records.put(progress_key(r.run, r.rank), fields);
  m_records.settle();
}

std::vector<ProgressRecord> RecordProgress::list_progress(const std::string& run) {
  std::vector<ProgressRecord> out;
  for (const auto& fields : m_records.list(run)) {
    ProgressRecord p;
    p.run = fields.value("run", std::string());
    if (!run.empty() && p.run != run) {
      continue;
    }
    p.rank = integer(fields, "rank");
    p.epoch = integer(fields, "epoch");
    p.step = integer(fields, "step");
    p.metrics = metrics_of(fields);
    p.updated_at = fields.value("updated_at", std::string());
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return std::pair(a.run, a.rank) < std::pair(b.run, b.rank); });
  return out;
}

}  // namespace vstash::backends::records
