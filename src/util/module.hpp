// SPDX-License-Identifier: MIT
// The optional parts of the vstash executable built as shared modules (CMakeLists.txt
// vstash_module: vstash-hdf5.so, vstash-pgvector.so, vstash-rest.so), so that a command loads
// libhdf5, libpq or libcurl only when it uses them. A module exports one extern "C" entry per
// part, `vstash_module_<part>()`, returning its table of functions; a program that links the
// module's objects in (the tests, the Python module) finds the entry linked and loads nothing.
#pragma once

#include <cstring>
#include <string>

namespace vstash::util {

// The address of `symbol` in module `name` (file vstash-<name>.so), loaded on first use with
// dlopen(RTLD_NOW | RTLD_LOCAL: its libraries stay out of the global symbol scope) from the
// executable's directory (the build tree), then VSTASH_MODULE_INSTALL_REL beside it (an
// install: ../lib/vstash). Thread-safe. Throws Error (exit 1), one line naming the module
// file, when it is missing, cannot be loaded or lacks the symbol.
void* module_symbol(const std::string& name, const char* symbol);

// Checks that a module's entry was built with this program's version (VSTASH_VERSION): a
// module from another build may not match the tables it returns. Throws Error (exit 1).
void check_module_version(const std::string& name, const char* module_version);

// The module's entry `symbol` as a function of type Entry: `linked` when the program links
// the module in (a weak reference, null otherwise), else module_symbol's.
template <typename Entry>
Entry module_entry(Entry linked, const std::string& name, const char* symbol) {
  if (linked) {
    return linked;
  }
  void* address = module_symbol(name, symbol);
  Entry entry = nullptr;
  static_assert(sizeof entry == sizeof address);
  std::memcpy(&entry, &address, sizeof entry);  // dlsym's object pointer to a function pointer
  return entry;
}

}  // namespace vstash::util
