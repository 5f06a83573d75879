// SPDX-License-Identifier: MIT
// Helpers several subcommands share: JSON arguments, vectors from flags or files, rows as
// JSON, confirmation prompts.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "src/array.hpp"
#include "src/filter.hpp"

namespace vstash::commands {

using json = nlohmann::json;

// JSON text, or @FILE to read it from a file. `what` names the flag in errors.
json parse_json_arg(const std::string& text, const std::string& what);
// A JSON object (metadata); throws UsageError otherwise.
json parse_object_arg(const std::string& text, const std::string& what);
// --filter JSON|@FILE.
Filter parse_filter_arg(const std::string& text);
// "[0.1, 0.2]" -> values; throws UsageError naming `what`.
std::vector<double> parse_vector_arg(const std::string& text, const std::string& what);
// All values of an NPY/HDF5 array, flattened (one vector).
std::vector<double> read_vector_file(const std::string& spec);
// An array of the given dtype and shape from values (rounded for integer dtypes).
Array make_array(DType dtype, Shape shape, const std::vector<double>& values);
// --metric k=v pairs; throws UsageError naming the bad pair.
std::map<std::string, double> parse_metric_pairs(const std::vector<std::string>& pairs);
// Throws UsageError "FLAG: must be between LO and HI, got V": numbers that size threads,
// buffers or requests are bounded where they enter (a typo of 2000000000 must not allocate).
void check_range(const std::string& flag, int64_t value, int64_t lo, int64_t hi);
// "a,b,,c" -> {"a","b","c"}.
std::vector<std::string> split_list(const std::string& text);

// The dataset's spec, or NotFoundError naming it.
backends::DatasetInfo require_dataset(backends::Backend& backend, const std::string& dataset);
// Throws UsageError unless the vector has the dataset's dimension.
void check_dimension(const backends::DatasetSpec& spec, size_t n, const std::string& what);
// Row i of a batch as {"id","index","label"?,"metadata","values"?}.
json row_json(const backends::RowBatch& batch, size_t i, bool include_values);
// A label cell (scalar label or array) as JSON.
json label_json(const Array& labels, int64_t row);
json dataset_json(const backends::DatasetInfo& info);
json checkpoint_info_json(const backends::CheckpointInfo& info);

// A bulk operation needs --yes when stdin is not a terminal; on a terminal the user is asked.
// Returns false if the user declined.
bool confirm_bulk(const std::string& question, bool yes, const std::string& command);

}  // namespace vstash::commands
