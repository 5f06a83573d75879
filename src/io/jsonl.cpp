// SPDX-License-Identifier: MIT
// JSON Lines readers; every error names file:line.
#include "src/io/jsonl.hpp"

#include <fmt/format.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <vector>

#include "src/errors.hpp"
#include "src/io/untrusted.hpp"

namespace vstash::io {

namespace {

std::string display_name(const std::string& path) { return path == "-" ? "<stdin>" : path; }

// Calls fn(line_number, text) for each line; "-" reads standard input. A UTF-8 byte order
// mark and Windows line ends are tolerated. A line longer than k_max_jsonl_line_bytes is an
// error (a file that is a link to /dev/zero has no line end at all).
template <class Fn>
void for_each_line(const std::string& path, Fn&& fn) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) {
      throw UsageError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    }
    in = &file;
  }
  std::string line;
  size_t number = 0;
  auto emit = [&] {
    ++number;
    if (number == 1 && line.rfind("\xef\xbb\xbf", 0) == 0) {
      line.erase(0, 3);
    }
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    fn(number, line);
    line.clear();
  };
  std::vector<char> buf(size_t{1} << 16);
  while (in->read(buf.data(), static_cast<std::streamsize>(buf.size())) || in->gcount() > 0) {
    const size_t got = static_cast<size_t>(in->gcount());
    size_t from = 0;
    while (from < got) {
      const char* nl = static_cast<const char*>(std::memchr(buf.data() + from, '\n', got - from));
      const size_t to = nl ? static_cast<size_t>(nl - buf.data()) : got;
      if (line.size() + (to - from) > k_max_jsonl_line_bytes) {
        throw UsageError(fmt::format("{}:{}: line longer than {} MiB (the limit for one JSONL line)",
                                     display_name(path), number + 1, k_max_jsonl_line_bytes >> 20));
      }
      line.append(buf.data() + from, to - from);
      from = to;
      if (nl) {
        emit();
        ++from;
      }
    }
  }
  if (in->bad()) {
    throw Error(fmt::format("{}: read failed", path));
  }
  if (!line.empty()) {
    emit();
  }
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t") == std::string::npos; }

nlohmann::json parse_object(const std::string& where, const std::string& line) {
  nlohmann::json j = parse_untrusted_json(line, where);
  if (!j.is_object()) {
    throw UsageError(fmt::format("{}: expected a JSON object, got {}", where, j.type_name()));
  }
  return j;
}

JsonlRecord to_record(const std::string& where, nlohmann::json j) {
  JsonlRecord r;
  const nlohmann::json* vector = nullptr;
  for (auto& [key, value] : j.items()) {
    if (key == "id") {
      if (value.is_string()) {
        r.id = value.get<std::string>();
      } else if (value.is_number_integer()) {
        r.id = value.dump();  // 42 and "42" name the same row
      } else if (!value.is_null()) {
        throw UsageError(fmt::format("{}: \"id\" must be a string or an integer, got {}", where, value.type_name()));
      }
    } else if (key == "vector" || key == "values") {
      if (vector != nullptr) {
        throw UsageError(fmt::format("{}: give \"vector\" or \"values\", not both", where));
      }
      vector = &value;
    } else if (key == "label") {
      r.label = value;
    } else if (key == "metadata") {
      if (!value.is_object() && !value.is_null()) {
        throw UsageError(fmt::format("{}: \"metadata\" must be an object, got {}", where, value.type_name()));
      }
      r.metadata = value;
    } else {
      throw UsageError(fmt::format("{}: unknown key \"{}\" (expected id, vector, label, metadata)", where, key));
    }
  }
  if (vector == nullptr) {
    throw UsageError(fmt::format("{}: missing \"vector\"", where));
  }
  if (!vector->is_array() || vector->empty()) {
    throw UsageError(fmt::format("{}: \"vector\" must be a non-empty array of numbers", where));
  }
  r.vector.reserve(vector->size());
  for (size_t i = 0; i < vector->size(); ++i) {
    const auto& v = (*vector)[i];
    if (!v.is_number()) {
      throw UsageError(fmt::format("{}: \"vector\"[{}] is {}, not a number", where, i, v.type_name()));
    }
    r.vector.push_back(v.get<double>());
  }
  return r;
}

}  // namespace

std::vector<JsonlRecord> read_jsonl(const std::string& path) {
  const std::string name = display_name(path);
  std::vector<JsonlRecord> out;
  for_each_line(path, [&](size_t number, const std::string& line) {
    if (is_blank(line)) {
      return;
    }
    const std::string where = fmt::format("{}:{}", name, number);
    out.push_back(to_record(where, parse_object(where, line)));
  });
  return out;
}

std::vector<nlohmann::json> read_jsonl_objects(const std::string& path) {
  const std::string name = display_name(path);
  std::vector<nlohmann::json> out;
  size_t blank_line = 0;
  for_each_line(path, [&](size_t number, const std::string& line) {
    // Rows line up with array rows, so a blank line in the middle would shift them all.
    if (is_blank(line)) {
      blank_line = blank_line == 0 ? number : blank_line;
      return;
    }
    if (blank_line != 0) {
      throw UsageError(fmt::format("{}:{}: empty line (one JSON object per row expected)", name, blank_line));
    }
    out.push_back(parse_object(fmt::format("{}:{}", name, number), line));
  });
  return out;
}

}  // namespace vstash::io
