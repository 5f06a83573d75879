// SPDX-License-Identifier: MIT
// Shared argument parsing and result shaping for the subcommands.
#include "commands/common.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <cmath>
#include <cstring>
#include <iostream>
#include <sstream>

#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/io/untrusted.hpp"

namespace vstash::commands {

json parse_json_arg(const std::string& text, const std::string& what) {
  if (!text.empty() && text[0] == '@') {
    const std::string path = text.substr(1);
    const std::string body = io::read_small_file(path, io::k_max_small_input_bytes, what);
    return io::parse_untrusted_json(body, fmt::format("{} {}", what, path));
  }
  return io::parse_untrusted_json(text, what);
}

json parse_object_arg(const std::string& text, const std::string& what) {
  json j = parse_json_arg(text, what);
  if (!j.is_object()) {
    throw UsageError(fmt::format("{}: expected a JSON object, got {}", what, j.type_name()));
  }
  return j;
}

Filter parse_filter_arg(const std::string& text) {
  const json j = parse_json_arg(text, "--filter");
  try {
    return Filter::from_json(j);
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    throw UsageError(msg.rfind("filter", 0) == 0 ? "--" + msg : "--filter: " + msg);
  }
}

std::vector<double> parse_vector_arg(const std::string& text, const std::string& what) {
  const json j = parse_json_arg(text, what);
  if (!j.is_array() || j.empty()) {
    throw UsageError(fmt::format("{}: expected a non-empty JSON array of numbers", what));
  }
  std::vector<double> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number()) {
      throw UsageError(fmt::format("{}: element {} is {}, expected a number", what, i, j[i].type_name()));
    }
    out.push_back(j[i].get<double>());
  }
  return out;
}

std::vector<double> read_vector_file(const std::string& spec) {
  const Array a = io::read_array(spec);
  std::vector<double> out(static_cast<size_t>(a.size()));
  for (int64_t i = 0; i < a.size(); ++i) {
    out[static_cast<size_t>(i)] = a.element_as_double(i);
  }
  return out;
}

Array make_array(DType dtype, Shape shape, const std::vector<double>& values) {
  Array a(dtype, std::move(shape));
  if (static_cast<size_t>(a.size()) != values.size()) {
    throw UsageError(fmt::format("expected {} values, got {}", a.size(), values.size()));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    switch (dtype) {
      case DType::f16:
        a.as<uint16_t>()[i] = float_to_half(static_cast<float>(v));
        break;
      case DType::f32:
        a.as<float>()[i] = static_cast<float>(v);
        break;
      case DType::f64:
        a.as<double>()[i] = v;
        break;
      case DType::i8:
        a.as<int8_t>()[i] = static_cast<int8_t>(std::lround(v));
        break;
      case DType::i16:
        a.as<int16_t>()[i] = static_cast<int16_t>(std::lround(v));
        break;
      case DType::i32:
        a.as<int32_t>()[i] = static_cast<int32_t>(std::lround(v));
        break;
      case DType::i64:
        a.as<int64_t>()[i] = std::llround(v);
        break;
      case DType::u8:
        a.as<uint8_t>()[i] = static_cast<uint8_t>(std::lround(v));
        break;
      case DType::u16:
        a.as<uint16_t>()[i] = static_cast<uint16_t>(std::lround(v));
        break;
      case DType::u32:
        a.as<uint32_t>()[i] = static_cast<uint32_t>(std::llround(v));
        break;
      case DType::u64:
        a.as<uint64_t>()[i] = static_cast<uint64_t>(std::llround(v));
        break;
      case DType::b1:
        a.as<uint8_t>()[i] = v != 0 ? 1 : 0;
        break;
    }
  }
  return a;
}

std::map<std::string, double> parse_metric_pairs(const std::vector<std::string>& pairs) {
  std::map<std::string, double> out;
  for (const auto& p : pairs) {
    const auto eq = p.find('=');
    double v = 0;
    bool ok = eq != std::string::npos && eq > 0;
    if (ok) {
      try {
        size_t used = 0;
        v = std::stod(p.substr(eq + 1), &used);
        ok = used == p.size() - eq - 1 && std::isfinite(v);
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (!ok) {
      throw UsageError(fmt::format("--metric \"{}\": expected NAME=NUMBER", p));
    }
    out[p.substr(0, eq)] = v;
  }
  return out;
}

void check_range(const std::string& flag, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    throw UsageError(fmt::format("{}: must be between {} and {}, got {}", flag, lo, hi, value));
  }
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) {
      out.push_back(item);
    }
  }
  return out;
}

backends::DatasetInfo require_dataset(backends::Backend& backend, const std::string& dataset) {
  auto info = backend.dataset_info(dataset);
  if (!info) {
    throw NotFoundError(fmt::format("dataset \"{}\" does not exist", dataset));
  }
  return *info;
}

void check_dimension(const backends::DatasetSpec& spec, size_t n, const std::string& what) {
  if (static_cast<int64_t>(n) != spec.dimension()) {
    throw UsageError(fmt::format("{}: vector has dimension {}, dataset \"{}\" has dimension {}", what, n, spec.name,
                                 spec.dimension()));
  }
}

json label_json(const Array& labels, int64_t row) {
  const int64_t per_row = shape_product(labels.row_shape());
  const bool integral = !dtype_is_float(labels.dtype());
  auto value = [&](int64_t i) -> json {
    const double v = labels.element_as_double(i);
    if (labels.dtype() == DType::b1) {
      return json(v != 0);
    }
    return integral ? json(static_cast<int64_t>(v)) : json(v);
  };
  if (labels.ndim() <= 1) {
    return value(row);
  }
  json arr = json::array();
  for (int64_t k = 0; k < per_row; ++k) {
    arr.push_back(value(row * per_row + k));
  }
  return arr;
}

json row_json(const backends::RowBatch& batch, size_t i, bool include_values) {
  json j = {{"id", batch.ids[i]}};
  j["index"] = i < batch.indices.size() ? json(batch.indices[i]) : json(nullptr);
  if (batch.labels) {
    j["label"] = label_json(*batch.labels, static_cast<int64_t>(i));
  }
  j["metadata"] = i < batch.metadata.size() ? batch.metadata[i] : json(nullptr);
  if (include_values) {
    j["values"] = batch.data.row_as_float32(static_cast<int64_t>(i));
  }
  return j;
}

json dataset_json(const backends::DatasetInfo& info) {
  const auto& s = info.spec;
  json j = {{"name", s.name},
            {"rows", info.rows},
            {"dimension", s.dimension()},
            {"dtype", std::string(dtype_name(s.dtype))},
            {"shape", s.row_shape},
            {"metric", std::string(backends::metric_name(s.metric))},
            {"bytes", info.bytes},
            {"next_index", info.next_index}};
  j["label_dtype"] = s.label_dtype ? json(std::string(dtype_name(*s.label_dtype))) : json(nullptr);
  j["label_shape"] = s.label_shape;
  j["metadata"] = s.metadata;
  j["extra"] = info.extra;
  return j;
}

json checkpoint_info_json(const backends::CheckpointInfo& info) {
  return {{"path", info.path},   {"model", info.model},           {"epoch", info.epoch},  {"metrics", info.metrics},
          {"bytes", info.bytes}, {"created_at", info.created_at}, {"latest", info.latest}};
}

bool confirm_bulk(const std::string& question, bool yes, const std::string& command) {
  if (yes) {
    return true;
  }
  if (isatty(STDIN_FILENO) != 1) {
    throw UsageError(fmt::format("{}: {}: stdin is not a terminal, pass --yes to confirm", command, question));
  }
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

}  // namespace vstash::commands
