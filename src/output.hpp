// SPDX-License-Identifier: MIT
// Rendering command results: aligned text tables for people, JSON and NDJSON for programs.
// Data goes to stdout; diagnostics never do.
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vstash::output {

// A table with a header row; columns are left-aligned unless marked numeric (right-aligned).
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header, std::vector<bool> numeric = {});
  void add_row(std::vector<std::string> cells);
  bool empty() const { return m_rows.empty(); }
  std::string render() const;

 private:
  std::vector<std::string> m_header;
  std::vector<bool> m_numeric;
  std::vector<std::vector<std::string>> m_rows;
};

// Pretty JSON (2-space indent) on stdout followed by a newline.
void print_json(const nlohmann::json& value);
// One compact JSON document on one line, flushed at once (NDJSON streams).
void print_ndjson(const nlohmann::json& value);
// Text on stdout as is.
void print_text(const std::string& text);

// Flushes stdout and checks that every write to it succeeded. A failed write (disk full,
// I/O error) is an Error naming stdout; see stdout_write_failed for a reader that went away.
void flush_stdout();
// A write to stdout failed with errno err. A reader that went away (EPIPE) ends the process
// quietly, as SIGPIPE ends other Unix tools (status 141): main() ignores SIGPIPE so that a
// server closing its socket is an error vstash reports, not a silent death. Anything else
// is an Error "stdout: write failed: ...".
[[noreturn]] void stdout_write_failed(int err);

// "1.5 MiB", "312 B": byte counts for people.
std::string human_bytes(int64_t bytes);
// Compact JSON for table cells, cut to max_width with "...".
std::string cell_json(const nlohmann::json& value, size_t max_width = 60);
// A double without trailing zeros ("0.5", "12", "1e-07").
std::string format_number(double value);

}  // namespace vstash::output
