// SPDX-License-Identifier: MIT
// Small inputs from people and files we do not control: a filter or a metadata object on the
// command line or in @FILE, one JSONL line, a profile file. Each is read and parsed within a
// fixed bound, so that /dev/zero, a runaway generator or a JSON bomb ends in a one-line
// UsageError naming the source and the limit, never in a crash or an unbounded allocation.
// The limits are documented in man/vstash.1 (LIMITS).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace vstash::io {

// Deepest nesting of arrays and objects accepted in any JSON input (filters, metadata,
// JSONL lines). Deeper input is refused before parsing: the filter and metadata code recurse.
constexpr int k_max_json_depth = 64;
// Largest @FILE argument (filter, vector, metadata) or profile file.
constexpr size_t k_max_small_input_bytes = size_t{16} << 20;
// Largest line of a JSONL file (one row: id, vector, label, metadata).
constexpr size_t k_max_jsonl_line_bytes = size_t{64} << 20;

// The whole content of path, read with a bound: a file (or pipe, or device) longer than
// `limit` bytes is a UsageError "WHAT PATH: larger than N MiB (the limit for ...)".
// `what` names the input ("--filter", "config file").
std::string read_small_file(const std::string& path, size_t limit, const std::string& what);

// Throws UsageError "WHERE: JSON nested deeper than 64 levels" when text nests too deep.
// Strings are skipped, so brackets inside them do not count.
void check_json_depth(std::string_view text, const std::string& where);

// Parses JSON text from an untrusted source. Every failure is a UsageError starting with
// `where`: malformed text (nlohmann's position, without its exception tag), nesting beyond
// k_max_json_depth, a number out of range (1e400).
nlohmann::json parse_untrusted_json(std::string_view text, const std::string& where);

// nlohmann's message without its "[json.exception.type_error.302] " tag, first line only:
// for errors about data that came from outside (a server reply), which must name what was
// wrong without the library's wording of it.
std::string json_error_text(const nlohmann::json::exception& e);

}  // namespace vstash::io
