// SPDX-License-Identifier: MIT
#include "src/util/module.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>
#include <vector>

#include "src/errors.hpp"

#ifndef VSTASH_MODULE_INSTALL_REL
#define VSTASH_MODULE_INSTALL_REL "../lib/vstash"
#endif

namespace vstash::util {

namespace {

namespace fs = std::filesystem;

std::string file_of(const std::string& name) { return "vstash-" + name + ".so"; }

// Where the module may be: beside the executable (the build tree), then the install's
// module directory relative to it.
std::vector<fs::path> candidates(const std::string& name) {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) {
    return {};
  }
  const fs::path dir = exe.parent_path();
  return {dir / file_of(name), (dir / VSTASH_MODULE_INSTALL_REL / file_of(name)).lexically_normal()};
}

void* open_module(const std::string& name) {
  const auto paths = candidates(name);
  for (const auto& path : paths) {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      continue;
    }
    if (void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      return handle;
    }
    const char* why = dlerror();
    throw Error(fmt::format("module {}: cannot be loaded: {}", path.string(), why ? why : "unknown reason"));
  }
  throw Error(fmt::format(
      "module {}: not found (looked in {}); reinstall vstash or rebuild it", file_of(name),
      paths.empty() ? std::string("no directory: /proc/self/exe unreadable")
                    : fmt::format("{} and {}", paths[0].parent_path().string(), paths[1].parent_path().string())));
}

}  // namespace

void* module_symbol(const std::string& name, const char* symbol) {
  static std::mutex mutex;
  static std::map<std::string, void*> handles;
  std::lock_guard lock(mutex);
  void*& handle = handles[name];
  if (!handle) {
    handle = open_module(name);
  }
  void* address = dlsym(handle, symbol);
  if (!address) {
    throw Error(fmt::format("module {}: has no {}; reinstall vstash or rebuild it", file_of(name), symbol));
  }
  return address;
}

void check_module_version(const std::string& name, const char* module_version) {
  if (std::string(module_version) != VSTASH_VERSION) {
    throw Error(fmt::format("module {}: from vstash {}, this is {}; reinstall vstash or rebuild it", file_of(name),
                            module_version, VSTASH_VERSION));
  }
}

}  // namespace vstash::util
