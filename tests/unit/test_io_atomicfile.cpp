// SPDX-License-Identifier: MIT
// Atomic output: a target appears whole on commit, and a failure at any point before it leaves
// the old target (or none) and no temporary behind.
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/io/atomicfile.hpp"
#include "src/io/hdf5.hpp"
#include "src/io/npy.hpp"
#include "tests/testutil.hpp"

using namespace vstash;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> names_in(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_SUITE("io::atomicfile") {
  TEST_CASE("the target appears only on commit, with the whole content") {
    const auto dir = testutil::scratch_dir("atomic-commit");
    const auto target = dir / "out.bin";
    {
      io::AtomicFile f(target.string());
      f.write("hello ", 6);
      f.write("world", 5);
      CHECK(!std::filesystem::exists(target));
      CHECK(std::filesystem::exists(f.temp_path()));
      CHECK(std::filesystem::path(f.temp_path()).parent_path() == dir);  // same filesystem: rename is atomic
      f.commit();
      f.commit();  // idempotent
      CHECK_THROWS_AS(f.write("x", 1), Error);
    }
    CHECK(slurp(target) == "hello world");
    CHECK(names_in(dir) == std::vector<std::string>{"out.bin"});
  }

  TEST_CASE("without commit (an exception on the way) the old target is untouched and no temp remains") {
    const auto dir = testutil::scratch_dir("atomic-abort");
    const auto target = dir / "out.txt";
    { std::ofstream(target) << "old content"; }
    try {
      io::AtomicFile f(target.string());
      f.write("new, half written", 17);
      throw std::runtime_error("failure in the middle of the write");
    } catch (const std::runtime_error&) {
    }
    CHECK(slurp(target) == "old content");
    CHECK(names_in(dir) == std::vector<std::string>{"out.txt"});
  }

  TEST_CASE("a temp written by another library through temp_path() is committed") {
    const auto dir = testutil::scratch_dir("atomic-path");
    const auto target = dir / "lib.out";
    io::AtomicFile f(target.string());
    { std::ofstream(f.temp_path(), std::ios::binary) << "by path"; }
    f.commit();
    CHECK(slurp(target) == "by path");
  }

  TEST_CASE("a missing directory is a usage error naming the target") {
    const auto dir = testutil::scratch_dir("atomic-nodir");
    const auto target = (dir / "no" / "such" / "out.npy").string();
    try {
      io::AtomicFile f(target);
      FAIL("expected an error");
    } catch (const UsageError& e) {
      CHECK(std::string(e.what()).find(target + ": cannot create a file in") == 0);
    }
    CHECK_THROWS_AS(io::AtomicFile(""), UsageError);
  }

  TEST_CASE("a failed rename (target is a directory) reports it and leaves no temp") {
    const auto dir = testutil::scratch_dir("atomic-rename");
    std::filesystem::create_directories(dir / "taken" / "child");
    {
      io::AtomicFile f((dir / "taken").string());
      f.write("x", 1);
      CHECK_THROWS_AS(f.commit(), Error);
    }
    CHECK(names_in(dir) == std::vector<std::string>{"taken"});
    CHECK(std::filesystem::is_directory(dir / "taken"));
  }

  TEST_CASE("the temp gets the permissions a new file would get") {
    const auto dir = testutil::scratch_dir("atomic-mode");
    const mode_t old = ::umask(022);
    {
      io::AtomicFile f((dir / "m").string());
      f.write("x", 1);
      f.commit();
    }
    ::umask(old);
    struct stat st {};
    REQUIRE(::stat((dir / "m").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
  }

  TEST_CASE("write_arrays (NPY) writes all files or none") {
    const auto dir = testutil::scratch_dir("atomic-arrays");
    const auto target = (dir / "out.npy").string();
    const Array data = testutil::random_f32(3, 2, 1);
    Array labels(DType::i64, {3});
    // Invalid UTF-8 in the ids fails after data and labels are complete in their temps.
    CHECK_THROWS_AS(io::write_arrays(target, {{"data", data}, {"labels", labels}}, {"a", "\xff", "c"}), UsageError);
    CHECK(names_in(dir).empty());
    io::write_arrays(target, {{"data", data}, {"labels", labels}}, {"a", "b", "c"});
    CHECK(names_in(dir) == std::vector<std::string>{"out.ids.npy", "out.labels.npy", "out.npy"});
    CHECK(io::read_array(target) == data);
    CHECK(io::read_array((dir / "out.labels.npy").string()) == labels);
    CHECK(io::read_strings((dir / "out.ids.npy").string()) == std::vector<std::string>{"a", "b", "c"});
  }

  TEST_CASE("a failed HDF5 rewrite keeps the old file intact") {
    const auto dir = testutil::scratch_dir("atomic-h5");
    const auto file = (dir / "keep.h5").string();
    const Array a = testutil::random_f32(4, 3, 2);
    io::write_array(file + ":/a", a);
    const std::string before = slurp(file);
    // The second dataset has an invalid path: the whole write fails, /b never appears.
    const Array b = testutil::random_f32(2, 2, 3);
    std::vector<io::Hdf5Write> items = {{"/b", &b, nullptr}, {"bad-path", &b, nullptr}};
    CHECK_THROWS_AS(io::write_hdf5(file, items, nlohmann::json(), true), UsageError);
    CHECK(slurp(file) == before);
    CHECK(names_in(dir) == std::vector<std::string>{"keep.h5"});
    CHECK(io::list_hdf5_datasets(file) == std::vector<std::string>{"/a"});
  }
}
