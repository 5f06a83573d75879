// SPDX-License-Identifier: MIT
// The filter language (src/filter.hpp): JSON text through Filter::parse. A filter that parses
// must evaluate against any metadata and any $label value without failing, and its canonical
// form must parse back to itself.
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "src/filter.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace vstash::fuzz {

namespace {

const nlohmann::json& sample_records() {
  static const nlohmann::json records = nlohmann::json::parse(R"([
    null, {}, {"genre": "drama", "year": 2020, "tag": ["a", "b"], "draft": false},
    {"year": 2019.5, "n": -1, "label": 3, "a.b": 1, "x": {"y": 1}},
    {"tag": "b", "year": "2020", "n": 1e300, "big": 18446744073709551615, "neg": -9223372036854775808}
  ])");
  return records;
}

}  // namespace

int fuzz_filter(const uint8_t* data, size_t size) {
  expect_error_or_success(as_text(data, size), [&] {
    const Filter f = Filter::parse(std::string(as_text(data, size)));
    const nlohmann::json labels = nlohmann::json::parse(R"([null, 3, -2.5, true, 18446744073709551615])");
    for (const auto& record : sample_records()) {
      for (const auto& label : labels) {
        (void)f.matches(record, label);
      }
    }
    const nlohmann::json canonical = f.to_json();
    if (Filter::from_json(canonical).to_json() != canonical) {
      std::abort();  // the canonical form is a cache key: it must be stable
    }
  });
  return 0;
}

}  // namespace vstash::fuzz

VSTASH_FUZZ_ENTRY(fuzz_filter)
