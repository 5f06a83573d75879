// SPDX-License-Identifier: MIT
// JSON Lines input (src/io/jsonl.hpp): the input is a whole file, read as records (ingest,
// insert) and as metadata objects (ingest --metadata). The readers take a path, so the input
// goes through an in-memory file (memfd) named by /proc/self/fd.
#include <sys/mman.h>
#include <unistd.h>
#include <cstdlib>
#include <string>

#include "src/io/jsonl.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace vstash::fuzz {

namespace {

// The memfd's path after it holds exactly the input.
std::string as_file(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("vstash-fuzz-jsonl", 0);
  if (fd < 0 || ftruncate(fd, 0) != 0 || (size > 0 && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))) {
    std::abort();
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

}  // namespace

int fuzz_jsonl(const uint8_t* data, size_t size) {
  const std::string path = as_file(data, size);
  expect_error_or_success(as_text(data, size), [&] {
    for (const auto& r : io::read_jsonl(path)) {
      if (r.vector.empty() || !(r.metadata.is_null() || r.metadata.is_object())) {
        std::abort();  // the reader promises a non-empty vector and object-or-null metadata
      }
    }
  });
  expect_error_or_success(as_text(data, size), [&] {
    for (const auto& j : io::read_jsonl_objects(path)) {
      if (!j.is_object()) {
        std::abort();
      }
    }
  });
  return 0;
}

}  // namespace vstash::fuzz

VSTASH_FUZZ_ENTRY(fuzz_jsonl)
