// SPDX-License-Identifier: MIT
// Mapped files and the arrays that view them: an NPY reader hands out views of one mapping
// (no copy per block), a view behaves as the array it shows (equality, slices, appends) and
// copies itself before any change, and a file truncated under a mapping ends the process
// with a one-line error naming it instead of a crash.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <string>
#include <vector>

#include "src/io/arrayfile.hpp"
#include "src/io/mappedfile.hpp"
#include "src/io/npy.hpp"
#include "tests/testutil.hpp"

using namespace vstash;

TEST_SUITE("io") {
  TEST_CASE("blocks of a native C-order NPY file are views that copy themselves before a change") {
    const auto dir = testutil::scratch_dir("mapped-views");
    const Array a = testutil::random_f32(5000, 6, 3);  // spans pages; data starts mid-page
    const auto path = (dir / "a.npy").string();
    io::write_npy(path, a);
    auto reader = io::open_array(path);
    Array block = reader->read_rows(1000, 2500);
    CHECK(block.is_view());
    CHECK(block == a.slice_rows(1000, 2500));
    CHECK(block.slice_rows(10, 3) == a.slice_rows(1010, 3));
    const Array copy = block;  // copies of a view share the mapping
    CHECK(copy.is_view());

    // A change goes to a private copy: the file's bytes, other views and later reads keep theirs.
    block.as<float>()[0] = 42.0f;
    CHECK_FALSE(block.is_view());
    CHECK(block.as<float>()[0] == 42.0f);
    CHECK(copy == a.slice_rows(1000, 2500));
    CHECK(reader->read_rows(1000, 1) == a.slice_rows(1000, 1));

    // Appending to a view (and a view to itself) makes an owned array of both.
    Array joined = reader->read_rows(0, 2);
    joined.append_rows(reader->read_rows(2, 3));
    CHECK_FALSE(joined.is_view());
    CHECK(joined == a.slice_rows(0, 5));
    Array twice = reader->read_rows(0, 2);
    twice.append_rows(twice);
    Array expected = a.slice_rows(0, 2);
    expected.append_rows(a.slice_rows(0, 2));
    CHECK(twice == expected);

    // The mapping outlives the reader and the file's replacement (writes are rename-based).
    Array kept = reader->read_rows(4990, 10);
    reader.reset();
    io::write_npy(path, testutil::random_f32(3, 6, 9));
    CHECK(kept == a.slice_rows(4990, 10));
    CHECK(reader == nullptr);
  }

  TEST_CASE("byte-swapped and empty files are read, not viewed") {
    const auto dir = testutil::scratch_dir("mapped-not");
    const auto empty = (dir / "e.npy").string();
    io::write_npy(empty, Array(DType::f32, {0, 4}));
    CHECK(io::open_array(empty)->read_rows(0, 10).rows() == 0);
    // A file written big-endian by hand: its blocks must be converted, so they are owned.
    const auto path = (dir / "a.npy").string();
    io::write_npy(path, testutil::random_f32(4, 2, 1));
    std::string bytes;
    {
      const int fd = ::open(path.c_str(), O_RDONLY);
      REQUIRE(fd >= 0);
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
        bytes.append(buf, static_cast<size_t>(n));
      }
      ::close(fd);
    }
    const auto at = bytes.find("'<f4'");
    REQUIRE(at != std::string::npos);
    bytes[at + 1] = '>';
    const auto swapped = (dir / "be.npy").string();
    {
      const int fd = ::open(swapped.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      REQUIRE(fd >= 0);
      REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
      ::close(fd);
    }
    CHECK_FALSE(io::open_array(swapped)->read_rows(0, 4).is_view());
    CHECK(io::open_array(path)->read_rows(0, 4).is_view());
  }

  TEST_CASE("a file truncated under its mapping ends the process with one line naming it, not a crash") {
    const auto dir = testutil::scratch_dir("mapped-truncated");
    const auto path = (dir / "t.bin").string();
    const std::string page(3 * 4096 + 100, 'x');
    int err_pipe[2];
    REQUIRE(::pipe(err_pipe) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::dup2(err_pipe[1], STDERR_FILENO);
      const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || ::write(fd, page.data(), page.size()) != static_cast<ssize_t>(page.size())) {
        ::_exit(10);
      }
      auto file = io::MappedFile::map(fd, path, 100, page.size() - 100);
      if (file == nullptr || ::ftruncate(fd, 0) != 0) {
        ::_exit(11);
      }
      // The last page is gone: reading it faults. Reaching the next line is the failure.
      const volatile char last = static_cast<char>(file->bytes()[file->bytes().size() - 1]);
      ::_exit(last == 'x' ? 12 : 13);
    }
    ::close(err_pipe[1]);
    std::string err;
    char buf[512];
    for (ssize_t n; (n = ::read(err_pipe[0], buf, sizeof buf)) > 0;) {
      err.append(buf, static_cast<size_t>(n));
    }
    ::close(err_pipe[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 2);
    CHECK(err == "vstash: error: " + path + ": truncated while being read (changed by another process?)\n");
  }
}
