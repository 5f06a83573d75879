// SPDX-License-Identifier: MIT
// Profile loading (src/profile.hpp): YAML text through parse_profile_text, then what commands
// do with a loaded file: select a profile and read its values.
#include <string>

#include "src/profile.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace vstash::fuzz {

int fuzz_profile(const uint8_t* data, size_t size) {
  expect_error_or_success(as_text(data, size), [&] {
    const ProfileFile file = parse_profile_text(std::string(as_text(data, size)), "fuzz.yaml");
    for (const auto& [name, profile] : file.profiles) {
      (void)profile.redacted();
      (void)profile.secrets();
      (void)profile.default_dataset();
      (void)profile.get_string("host", "");
      (void)profile.get_int("port", 0);
      (void)profile.get_double("timeout_ms", 0);
      (void)profile.get_bool("wait", false);
    }
    (void)select_profile(file, "");
  });
  return 0;
}

}  // namespace vstash::fuzz

VSTASH_FUZZ_ENTRY(fuzz_profile)
