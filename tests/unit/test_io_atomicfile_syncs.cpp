// SPDX-License-Identifier: MIT
// The fsyncs and renames of an atomic multi-file output (io::write_arrays, what `batch -o`
// writes): every file is synced before its rename, and their shared directory once after the
// last rename, not once per file. fsync and rename are interposed here (this program's
// definitions win over libc's) to count the calls made while a counter is armed.
#include <doctest/doctest.h>

#include <dlfcn.h>
#include <sys/stat.h>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "src/io/arrayfile.hpp"
#include "tests/testutil.hpp"

namespace {

std::atomic<bool> g_counting{false};
std::atomic<int> g_file_syncs{0};
std::atomic<int> g_directory_syncs{0};
std::atomic<int> g_renames{0};

template <typename Fn>
Fn next_definition(const char* name) {
  void* address = dlsym(RTLD_NEXT, name);
  Fn fn = nullptr;
  std::memcpy(&fn, &address, sizeof fn);
  return fn;
}

}  // namespace

extern "C" int fsync(int fd) {
  static const auto real = next_definition<int (*)(int)>("fsync");
  struct stat st {};
  if (g_counting && ::fstat(fd, &st) == 0) {
    ++(S_ISDIR(st.st_mode) ? g_directory_syncs : g_file_syncs);
  }
  return real(fd);
}

extern "C" int rename(const char* from, const char* to) noexcept {
  static const auto real = next_definition<int (*)(const char*, const char*)>("rename");
  if (g_counting) {
    ++g_renames;
  }
  return real(from, to);
}

TEST_SUITE("io::atomicfile syncs") {
  TEST_CASE("write_arrays syncs each file, renames it, and syncs the directory once") {
    using namespace vstash;
    const auto dir = testutil::scratch_dir("atomic-syncs");
    const Array data = testutil::random_f32(3, 2, 1);
    Array labels(DType::i64, {3});
    g_file_syncs = g_directory_syncs = g_renames = 0;
    g_counting = true;
    io::write_arrays((dir / "out.npy").string(), {{"data", data}, {"labels", labels}}, {"a", "b", "c"});
    g_counting = false;
    CHECK(g_file_syncs == 3);
    CHECK(g_renames == 3);
    CHECK(g_directory_syncs == 1);
    CHECK(io::read_array((dir / "out.npy").string()) == data);
  }
}
