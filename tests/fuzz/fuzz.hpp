// SPDX-License-Identifier: MIT
// What every fuzz target shares: the entry point and the oracle.
//
// A target is `int fuzz_<name>(const uint8_t*, size_t)` in fuzz_<name>.cpp, ending with
// VSTASH_FUZZ_ENTRY(fuzz_<name>). Built with -fsanitize=fuzzer that becomes libFuzzer's entry
// point; built with VSTASH_FUZZ_REPLAY (replay.cpp, the unit run) it is only the function.
//
// The oracle: hostile input may end in a vstash::Error, nothing else. Any other exception
// (nlohmann, yaml-cpp, std::bad_alloc, ...) escapes to std::terminate, which libFuzzer reports
// as a crash, as it does sanitizer reports, timeouts and memory over -rss_limit_mb. An Error's
// message must not be empty or carry raw library text such as "[json.exception.type_error.302]".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/errors.hpp"

namespace vstash::fuzz {

// Aborts (a crash libFuzzer reports with this input) when an Error's message breaks the rules.
// Messages may quote the input, so library text that the input itself holds is allowed.
void check_message(const vstash::Error& e, std::string_view input);

// Runs fn on input; a vstash::Error is the expected outcome of bad input and is checked, not
// propagated.
template <class Fn>
void expect_error_or_success(std::string_view input, Fn&& fn) {
  try {
    fn();
  } catch (const vstash::Error& e) {
    check_message(e, input);
  }
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace vstash::fuzz

#ifdef VSTASH_FUZZ_REPLAY
#define VSTASH_FUZZ_ENTRY(fn)
#else
#define VSTASH_FUZZ_ENTRY(fn) \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return vstash::fuzz::fn(data, size); }
#endif
