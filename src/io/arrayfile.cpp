// SPDX-License-Identifier: MIT
// Array files by name: picks NPY or HDF5 from the spec and dispatches.
#include "src/io/arrayfile.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <list>

#include "src/errors.hpp"
#include "src/io/atomicfile.hpp"
#include "src/io/hdf5.hpp"
#include "src/io/npy.hpp"

namespace vstash::io {

namespace {

std::string lower_extension(const std::string& file) {
  std::string ext = std::filesystem::path(file).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// For names without a known extension: the magic bytes decide, if the file exists.
enum class Sniffed { npy, hdf5, unknown };
Sniffed sniff(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  char magic[8] = {};
  if (!in.read(magic, sizeof(magic))) {
    return Sniffed::unknown;
  }
  if (std::memcmp(magic, "\x93NUMPY", 6) == 0) {
    return Sniffed::npy;
  }
  if (std::memcmp(magic, "\x89HDF\r\n\x1a\n", 8) == 0) {
    return Sniffed::hdf5;
  }
  return Sniffed::unknown;
}

void require_npy(const ArrayLocation& loc) {
  if (loc.is_hdf5) {
    throw Error(fmt::format("{}: not an NPY location", loc.to_string()));
  }
}

// "out.npy" + "labels" -> "out.labels.npy"; a nested HDF5 name "enc/w" -> "out.enc.w.npy".
std::string npy_sibling(const std::string& target, const std::string& name) {
  std::filesystem::path p(target);
  const std::string stem = p.stem().string();
  std::string flat = name;
  std::replace(flat.begin(), flat.end(), '/', '.');
  return (p.parent_path() / fmt::format("{}.{}.npy", stem, flat)).string();
}

// Names are relative dataset paths: "data", or "layer1/weight" for an array that came from a
// group of an HDF5 checkpoint. Empty, absolute, "." and ".." components are refused.
void check_array_name(const std::string& target, const std::string& name) {
  bool ok = !name.empty() && name.front() != '/' && name.back() != '/';
  for (size_t begin = 0; ok && begin <= name.size();) {
    const size_t end = std::min(name.find('/', begin), name.size());
    const std::string_view part(name.data() + begin, end - begin);
    ok = !part.empty() && part != "." && part != "..";
    begin = end + 1;
  }
  if (!ok) {
    throw UsageError(fmt::format("{}: invalid array name \"{}\"", target, name));
  }
}

bool is_hdf5_extension(const std::string& ext) {
  return ext == ".h5" || ext == ".hdf5" || ext == ".hdf" || ext == ".he5";
}

}  // namespace

ArrayLocation ArrayLocation::parse(const std::string& spec) {
  if (spec.empty()) {
    throw UsageError("empty array file name");
  }
  ArrayLocation loc;
  loc.file = spec;
  // Split on the last ':' only when a '/' follows, so "C:x.npy" or "a:b.h5" stay file names.
  const auto colon = spec.rfind(':');
  if (colon != std::string::npos && colon + 1 < spec.size() && spec[colon + 1] == '/') {
    loc.file = spec.substr(0, colon);
    loc.dataset = spec.substr(colon + 1);
    loc.is_hdf5 = true;
    if (loc.file.empty()) {
      throw UsageError(fmt::format("{}: missing file name before ':'", spec));
    }
    if (lower_extension(loc.file) == ".npy") {
      throw UsageError(fmt::format("{}: dataset paths are only for HDF5 files", spec));
    }
    return loc;
  }
  // "data.h5:train" (no leading '/') means "/train", as h5py's f["train"] does.
  if (colon != std::string::npos && colon + 1 < spec.size() &&
      is_hdf5_extension(lower_extension(spec.substr(0, colon)))) {
    loc.file = spec.substr(0, colon);
    // Built in place: `"/" + substr(...)` trips a false -Wrestrict in g++ 12 at -O3.
    loc.dataset.assign(1, '/');
    loc.dataset.append(spec, colon + 1, std::string::npos);
    loc.is_hdf5 = true;
    return loc;
  }
  const std::string ext = lower_extension(loc.file);
  if (ext == ".npy") {
    return loc;
  }
  if (is_hdf5_extension(ext)) {
    loc.is_hdf5 = true;
    return loc;
  }
  switch (sniff(loc.file)) {
    case Sniffed::npy:
      return loc;
    case Sniffed::hdf5:
      loc.is_hdf5 = true;
      return loc;
    case Sniffed::unknown:
      break;
  }
  throw UsageError(fmt::format("{}: unknown array file format (use .npy, .h5 or .hdf5)", spec));
}

std::string ArrayLocation::to_string() const { return dataset.empty() ? file : fmt::format("{}:{}", file, dataset); }

std::vector<int64_t> ArrayReader::nonfinite_rows(int64_t block_rows) {
  std::vector<int64_t> bad;
  if (!dtype_is_float(dtype())) {
    return bad;
  }
  for (int64_t first = 0; first < rows(); first += block_rows) {
    read_rows(first, block_rows).append_nonfinite_rows(first, bad);
  }
  return bad;
}

std::unique_ptr<ArrayReader> open_array(const std::string& spec) {
  const auto loc = ArrayLocation::parse(spec);
  if (loc.is_hdf5) {
    return open_hdf5(loc.file, loc.dataset);
  }
  return open_npy(loc.file);
}

Array read_array(const std::string& spec) {
  auto reader = open_array(spec);
  return reader->read_rows(0, reader->rows());
}

std::vector<std::string> read_strings(const std::string& spec) {
  const auto loc = ArrayLocation::parse(spec);
  if (loc.is_hdf5) {
    return read_hdf5_strings(loc.file, loc.dataset);
  }
  return read_npy_strings(loc.file);
}

bool is_string_array(const std::string& spec) {
  const auto loc = ArrayLocation::parse(spec);
  if (loc.is_hdf5) {
    return hdf5_holds_strings(loc.file, loc.dataset);
  }
  return npy_holds_strings(loc.file);
}

void write_array(const std::string& spec, const Array& array) {
  const auto loc = ArrayLocation::parse(spec);
  if (!loc.is_hdf5) {
    write_npy(loc.file, array);
    return;
  }
  // Without a dataset path the file is written afresh with one dataset, "/data".
  const bool keep = !loc.dataset.empty();
  write_hdf5(loc.file, {{keep ? loc.dataset : "/data", &array, nullptr}}, nlohmann::json(), keep);
}

void write_strings(const std::string& spec, const std::vector<std::string>& strings) {
  const auto loc = ArrayLocation::parse(spec);
  if (!loc.is_hdf5) {
    write_npy_strings(loc.file, strings);
    return;
  }
  const bool keep = !loc.dataset.empty();
  write_hdf5(loc.file, {{keep ? loc.dataset : "/ids", nullptr, &strings}}, nlohmann::json(), keep);
}

void write_arrays(const std::string& target, const std::vector<NamedArray>& arrays, const std::vector<std::string>& ids,
                  const nlohmann::json& attributes) {
  const auto loc = ArrayLocation::parse(target);
  for (const auto& a : arrays) {
    check_array_name(target, a.name);
  }
  if (loc.is_hdf5) {
    // A dataset path names the group to write into; the rest of that file is kept.
    const std::string group = loc.dataset == "/" ? "" : loc.dataset;
    std::vector<Hdf5Write> items;
    for (const auto& a : arrays) {
      items.push_back({fmt::format("{}/{}", group, a.name), &a.array, nullptr});
    }
    if (!ids.empty()) {
      items.push_back({fmt::format("{}/ids", group), nullptr, &ids});
    }
    write_hdf5(loc.file, items, attributes, !loc.dataset.empty());
    return;
  }
  require_npy(loc);
  // Every file is complete in its temp before the first rename, so a failure leaves none.
  std::list<AtomicFile> files;
  for (size_t i = 0; i < arrays.size(); ++i) {
    const std::string path = i == 0 ? loc.file : npy_sibling(loc.file, arrays[i].name);
    files.emplace_back(path);
    try {
      write_npy_stream(files.back().stream(), arrays[i].array);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", path, e.what()), e.code());
    }
  }
  if (!ids.empty()) {
    const std::string path = npy_sibling(loc.file, "ids");
    files.emplace_back(path);
    try {
      write_npy_strings_stream(files.back().stream(), ids);
    } catch (const UsageError& e) {
      throw UsageError(fmt::format("{}: {}", path, e.what()));
    }
  }
  // The siblings share loc.file's directory: one fsync of it makes every rename durable.
  for (auto& f : files) {
    f.commit(false);
  }
  sync_parent_directory(loc.file);
}

std::vector<NamedArray> read_all_arrays(const std::string& file) {
  const auto loc = ArrayLocation::parse(file);
  std::vector<NamedArray> out;
  if (!loc.is_hdf5) {
    out.push_back({"parameters", read_array(loc.file)});
    return out;
  }
  for (const auto& path : list_hdf5_datasets(loc.file)) {
    if (hdf5_holds_strings(loc.file, path)) {
      continue;
    }
    out.push_back({path.substr(1), read_array(fmt::format("{}:{}", loc.file, path))});
  }
  return out;
}

}  // namespace vstash::io
