// SPDX-License-Identifier: MIT
// iotool: a thin command line over src/io for the interop tests (tests/integration/interop_test.py),
// so numpy/h5py files can be pushed through vstash's readers and writers without a store.
//   iotool info SPEC                 JSON {dtype, shape, attributes} or {strings: N}
//   iotool copy IN OUT               read IN whole (numbers or strings), write OUT
//   iotool blocks SPEC ROWS OUT      read SPEC in blocks of ROWS, append them, write OUT;
//                                    prints the row count of every block as a JSON list
//   iotool scan SPEC ROWS            read SPEC in blocks of ROWS and drop them (bench/: peak
//                                    memory of a block-wise read); prints {rows, blocks, sum}
//   iotool strings SPEC              the strings as a JSON list
//   iotool datasets FILE.h5          the dataset paths as a JSON list
//   iotool attrs FILE.h5             the root attributes as JSON
//   iotool write OUT NAME=SPEC... [--ids SPEC] [--attrs JSON]   io::write_arrays
// Errors: one line on stderr and the vstash exit code (2 usage, 4 not found, 1 fatal).
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/io/hdf5.hpp"

namespace {

using namespace vstash;

void print(const nlohmann::json& j) { std::printf("%s\n", j.dump().c_str()); }

int run(const std::vector<std::string>& args) {
  auto need = [&](size_t n) {
    if (args.size() < n) {
      throw UsageError("iotool: missing arguments (see the comment at the top of iotool.cpp)");
    }
  };
  need(1);
  const std::string& cmd = args[0];
  if (cmd == "info") {
    need(2);
    if (io::is_string_array(args[1])) {
      print({{"strings", io::read_strings(args[1]).size()}});
      return 0;
    }
    auto reader = io::open_array(args[1]);
    print({{"dtype", dtype_name(reader->dtype())}, {"shape", reader->shape()}, {"attributes", reader->attributes()}});
    return 0;
  }
  if (cmd == "copy") {
    need(3);
    if (io::is_string_array(args[1])) {
      io::write_strings(args[2], io::read_strings(args[1]));
    } else {
      io::write_array(args[2], io::read_array(args[1]));
    }
    return 0;
  }
  if (cmd == "blocks") {
    need(4);
    auto reader = io::open_array(args[1]);
    const int64_t block = std::stoll(args[2]);
    Array all;
    nlohmann::json sizes = nlohmann::json::array();
    for (int64_t first = 0; first < reader->rows(); first += block) {
      Array b = reader->read_rows(first, block);
      sizes.push_back(b.rows());
      all.append_rows(b);
    }
    io::write_array(args[3], all);
    print(sizes);
    return 0;
  }
  if (cmd == "scan") {
    need(3);
    auto reader = io::open_array(args[1]);
    const int64_t block = std::stoll(args[2]);
    int64_t rows = 0;
    int64_t blocks = 0;
    double sum = 0;  // touches every value, so nothing is optimised away
    for (int64_t first = 0; first < reader->rows(); first += block) {
      const Array b = reader->read_rows(first, block);
      rows += b.rows();
      ++blocks;
      for (int64_t i = 0; i < b.size(); i += 97) {
        sum += b.element_as_double(i);
      }
    }
    print({{"rows", rows}, {"blocks", blocks}, {"sum", sum}});
    return 0;
  }
  if (cmd == "strings") {
    need(2);
    print(io::read_strings(args[1]));
    return 0;
  }
  if (cmd == "datasets") {
    need(2);
    print(io::list_hdf5_datasets(args[1]));
    return 0;
  }
  if (cmd == "attrs") {
    need(2);
    print(io::read_hdf5_file_attributes(args[1]));
    return 0;
  }
  if (cmd == "write") {
    need(3);
    std::vector<io::NamedArray> arrays;
    std::vector<std::string> ids;
    nlohmann::json attrs;
    for (size_t i = 2; i < args.size(); ++i) {
      if (args[i] == "--ids" && i + 1 < args.size()) {
        ids = io::read_strings(args[++i]);
      } else if (args[i] == "--attrs" && i + 1 < args.size()) {
        attrs = nlohmann::json::parse(args[++i]);
      } else {
        const auto eq = args[i].find('=');
        if (eq == std::string::npos) {
          throw UsageError("iotool write: expected NAME=SPEC, got " + args[i]);
        }
        arrays.push_back({args[i].substr(0, eq), io::read_array(args[i].substr(eq + 1))});
      }
    }
    io::write_arrays(args[1], arrays, ids, attrs);
    return 0;
  }
  throw UsageError("iotool: unknown command " + cmd);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const vstash::Error& e) {
    std::fprintf(stderr, "iotool: error: %s\n", e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "iotool: error: %s\n", e.what());
    return 1;
  }
}
