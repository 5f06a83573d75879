// SPDX-License-Identifier: MIT
// JSON Lines input for ingest and insert: one object per line with "id", "vector" (or
// "values"), optional "label" and "metadata". Errors name file:line.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace vstash::io {

struct JsonlRecord {
  std::optional<std::string> id;
  std::vector<double> vector;
  nlohmann::json label;     // null if absent
  nlohmann::json metadata;  // null if absent
};

std::vector<JsonlRecord> read_jsonl(const std::string& path);
// Metadata-only JSONL (one object per line, one line per row) for `ingest --metadata`.
std::vector<nlohmann::json> read_jsonl_objects(const std::string& path);

}  // namespace vstash::io
