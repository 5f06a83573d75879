// SPDX-License-Identifier: MIT
// Text tables and JSON writers for command results.
#include "src/output.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>

#include "src/errors.hpp"

namespace vstash::output {

TextTable::TextTable(std::vector<std::string> header, std::vector<bool> numeric)
    : m_header(std::move(header)), m_numeric(std::move(numeric)) {
  m_numeric.resize(m_header.size(), false);
}

void TextTable::add_row(std::vector<std::string> cells) {
  cells.resize(m_header.size());
  m_rows.push_back(std::move(cells));
}

std::string TextTable::render() const {
  std::vector<size_t> widths(m_header.size());
  for (size_t c = 0; c < m_header.size(); ++c) {
    widths[c] = m_header[c].size();
    for (const auto& row : m_rows) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t c = 0; c < cells.size(); ++c) {
      const bool last = c + 1 == cells.size();
      if (m_numeric[c]) {
        line += fmt::format("{:>{}}", cells[c], widths[c]);
      } else if (last) {
        line += cells[c];  // no trailing blanks
      } else {
        line += fmt::format("{:<{}}", cells[c], widths[c]);
      }
      if (!last) {
        line += "  ";
      }
    }
    while (!line.empty() && line.back() == ' ') {
      line.pop_back();
    }
    out += line;
    out += '\n';
  };
  emit(m_header);
  for (const auto& row : m_rows) {
    emit(row);
  }
  return out;
}

void print_json(const nlohmann::json& value) {
  errno = 0;
  std::cout << value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  flush_stdout();
}

void print_ndjson(const nlohmann::json& value) {
  errno = 0;
  std::cout << value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  // A stream stops at the first failed line rather than computing the rest for nobody.
  flush_stdout();
}

void print_text(const std::string& text) {
  errno = 0;
  std::cout << text;
  flush_stdout();
}

std::string human_bytes(int64_t bytes) {
  static constexpr const char* k_units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  while (v >= 1024.0 && unit + 1 < std::size(k_units)) {
    v /= 1024.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, k_units[unit]);
}

std::string cell_json(const nlohmann::json& value, size_t max_width) {
  if (value.is_null()) {
    return "-";
  }
  std::string s = value.is_string() ? value.get<std::string>()
                                    : value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > max_width && max_width > 3) {
    s = s.substr(0, max_width - 3) + "...";
  }
  return s;
}

std::string format_number(double value) { return fmt::format("{}", value); }

void stdout_write_failed(int err) {
  if (err == EPIPE) {
    std::signal(SIGPIPE, SIG_DFL);
    std::raise(SIGPIPE);
  }
  throw Error(fmt::format("stdout: write failed: {}", std::strerror(err)));
}

void flush_stdout() {
  // std::cout shares stdout's buffer (sync_with_stdio). The print functions clear errno
  // before they write, so that it still names the cause when a write within them failed.
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
    stdout_write_failed(errno != 0 ? errno : EIO);
  }
}

}  // namespace vstash::output
