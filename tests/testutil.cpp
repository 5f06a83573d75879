// SPDX-License-Identifier: MIT
#include "tests/testutil.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <atomic>

namespace vstash::testutil {

namespace {
std::filesystem::path scratch_root() {
  static const std::filesystem::path root = [] {
    const char* base = std::getenv("VSTASH_TEST_STATE");
    auto p = std::filesystem::path(base ? base : "/tmp") / fmt::format("scratch-{}", ::getpid());
    std::filesystem::create_directories(p);
    return p;
  }();
  return root;
}
std::atomic<int> g_counter{0};
}  // namespace

std::filesystem::path scratch_dir(const std::string& name) {
  auto p = scratch_root() / fmt::format("{}-{}", name, g_counter++);
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

std::string unique_name(const std::string& prefix) {
  static const unsigned salt = std::random_device{}();
  return fmt::format("{}_{}_{:x}_{}", prefix, ::getpid(), salt & 0xffff, g_counter++);
}

Array random_f32(int64_t rows, int64_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Array a(DType::f32, {rows, dim});
  float* p = a.as<float>();
  for (int64_t i = 0; i < rows * dim; ++i) {
    p[i] = u(rng);
  }
  return a;
}

}  // namespace vstash::testutil
