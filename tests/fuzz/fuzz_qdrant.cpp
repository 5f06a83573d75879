// SPDX-License-Identifier: MIT
// Qdrant replies (backends/qdrant/qdrantpoints.hpp): byte 0 picks the dataset (replyspecs.hpp),
// the rest is a reply body as the server sends it. The envelope is opened as RestClient does
// ({"result": ...}); the points of a scroll or query result ({"points": [...]}) or of a
// retrieve or search result ([...]) are decoded as rows, with and without samples; a catalog
// point's spec (payload "spec") is decoded and then used to decode the same row points.
#include <nlohmann/json.hpp>
#include <vector>

#include "backends/qdrant/qdrantpoints.hpp"
#include "fuzz.hpp"
#include "replyspecs.hpp"

namespace vstash::fuzz {

namespace {

const json* member(const json& j, const char* key) {
  if (!j.is_object()) {
    return nullptr;
  }
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

void decode_all(std::string_view input, const DatasetSpec& spec, const std::vector<const json*>& records) {
  expect_error_or_success(input, [&] { (void)backends::qdrant::decode_records(spec, records, true); });
  expect_error_or_success(input, [&] { (void)backends::qdrant::decode_records(spec, records, false); });
}

}  // namespace

int fuzz_qdrant(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::string_view input = as_text(data, size);
  const DatasetSpec& spec = reply_spec(data[0]);
  const json body = json::parse(input.substr(1), nullptr, false);
  const json* result = member(body, "result");
  if (result == nullptr) {
    return 0;  // RestClient::unwrap refuses it
  }
  const json* points = result->is_array() ? result : member(*result, "points");
  if (points == nullptr || !points->is_array()) {
    return 0;
  }
  std::vector<const json*> records;
  std::vector<DatasetSpec> catalog_specs;
  for (const auto& p : *points) {
    if (const json* id = member(p, "id")) {
      expect_error_or_success(input, [&] { (void)backends::qdrant::point_key(*id); });
    }
    const json* payload = member(p, "payload");
    if (const json* s = payload ? member(*payload, "spec") : nullptr) {  // a catalog point
      expect_error_or_success(input, [&] { catalog_specs.push_back(backends::qdrant::spec_from_json("fuzz", *s)); });
      continue;
    }
    records.push_back(&p);
    expect_error_or_success(input, [&] { (void)backends::qdrant::record_values(spec, p); });
  }
  decode_all(input, spec, records);
  for (const auto& s : catalog_specs) {
    decode_all(input, s, records);
  }
  return 0;
}

}  // namespace vstash::fuzz

VSTASH_FUZZ_ENTRY(fuzz_qdrant)
