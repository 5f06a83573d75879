// SPDX-License-Identifier: MIT
// vstash_fuzz_replay: runs every seed and regression input of every fuzz target once, built
// with the normal build's compiler and sanitizers (CTest "fuzz_replay"), so that a parser change
// that breaks on a known input fails the ordinary test run, not only the clang fuzz step.
//   vstash_fuzz_replay FUZZ_DIR    (FUZZ_DIR holds corpus/<target>/ and regressions/<target>/)
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz.hpp"

namespace vstash::fuzz {
int fuzz_npyheader(const uint8_t* data, size_t size);
int fuzz_filter(const uint8_t* data, size_t size);
int fuzz_profile(const uint8_t* data, size_t size);
int fuzz_jsonl(const uint8_t* data, size_t size);
int fuzz_qdrant(const uint8_t* data, size_t size);
int fuzz_pinecone(const uint8_t* data, size_t size);
}  // namespace vstash::fuzz

namespace {

namespace fs = std::filesystem;

struct Target {
  const char* name;
  int (*run)(const uint8_t*, size_t);
};

constexpr Target k_targets[] = {
    {"npyheader", vstash::fuzz::fuzz_npyheader}, {"filter", vstash::fuzz::fuzz_filter},
    {"profile", vstash::fuzz::fuzz_profile},     {"jsonl", vstash::fuzz::fuzz_jsonl},
#ifdef VSTASH_HAVE_QDRANT
    {"qdrant", vstash::fuzz::fuzz_qdrant},
#endif
#ifdef VSTASH_HAVE_PINECONE
    {"pinecone", vstash::fuzz::fuzz_pinecone},
#endif
};

std::vector<fs::path> inputs_of(const fs::path& dir) {
  std::vector<fs::path> out;
  if (fs::is_directory(dir)) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file()) {
        out.push_back(e.path());
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: vstash_fuzz_replay FUZZ_DIR\n");
    return 2;
  }
  const fs::path root = argv[1];
  for (const auto& t : k_targets) {
    size_t count = 0;
    for (const char* kind : {"corpus", "regressions"}) {
      for (const auto& path : inputs_of(root / kind / t.name)) {
        // Printed first: a crash (sanitizer report, abort) ends the program right after it.
        std::fprintf(stderr, "%s: %s\n", t.name, path.c_str());
        std::ifstream in(path, std::ios::binary);
        const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        t.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        ++count;
      }
    }
    if (count == 0) {
      std::fprintf(stderr, "vstash_fuzz_replay: no inputs for %s under %s\n", t.name, root.c_str());
      return 1;
    }
    std::printf("%s: %zu inputs replayed\n", t.name, count);
    std::fflush(stdout);
  }
  return 0;
}
