// SPDX-License-Identifier: MIT
// Qdrant replies, as the backend reads them: byte 0 picks the dataset (bits 0-1, replyspecs.hpp)
// and the operation (bits 2-3: scroll, query, search, retrieve), the rest is the reply body.
// A body that is no {"result": ...} envelope, or whose result fails the operation's shape check
// (check_result, qdrantclient.hpp), is the HTTP layer's to refuse; what passes is decoded
// (qdrantpoints.hpp) as rows, with and without samples. A catalog point's spec (payload "spec")
// is decoded too and then used to decode the same row points.
#include <nlohmann/json.hpp>
#include <vector>

#include "backends/common/catalog.hpp"
#include "backends/qdrant/qdrantclient.hpp"
#include "backends/qdrant/qdrantpoints.hpp"
#include "tests/fuzz/fuzz.hpp"
#include "tests/fuzz/replyspecs.hpp"

namespace vstash::fuzz {

namespace {

namespace qd = backends::qdrant;

struct Operation {
  qd::Call call;
  const char* points;  // the member of the result holding the points; nullptr: the result itself
};

const Operation k_operations[] = {
    {{"POST", "/collections/c/points/scroll", ""}, "points"},
    {{"POST", "/collections/c/points/query", ""}, "points"},
    {{"POST", "/collections/c/points/search", ""}, nullptr},
    {{"POST", "/collections/c/points", ""}, nullptr},
};

const json* member(const json& j, const char* key) {
  if (!j.is_object()) {
    return nullptr;
  }
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

void decode_all(std::string_view input, const DatasetSpec& spec, const std::vector<const json*>& records) {
  expect_error_or_success(input, [&] { (void)qd::decode_records(spec, records, true); });
  expect_error_or_success(input, [&] { (void)qd::decode_records(spec, records, false); });
}

}  // namespace

int fuzz_qdrant(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::string_view input = as_text(data, size);
  const DatasetSpec& spec = reply_spec(data[0] & 3);
  const Operation& op = k_operations[(data[0] >> 2) & 3];
  const json body = json::parse(input.substr(1), nullptr, false);
  const json* result = member(body, "result");
  if (result == nullptr) {
    return 0;
  }
  try {
    qd::check_result(op.call, *result);
  } catch (const backends::http::BadReply&) {
    return 0;
  } catch (const json::exception&) {
    return 0;  // the HTTP layer treats these as a bad reply too
  }
  const json* points = op.points ? member(*result, op.points) : result;
  std::vector<const json*> records;
  std::vector<DatasetSpec> catalog_specs;
  for (const auto& p : *points) {
    expect_error_or_success(input, [&] { (void)qd::point_key(p.at("id")); });
    const json* payload = member(p, "payload");
    if (const json* s = payload ? member(*payload, "spec") : nullptr) {  // a catalog point
      expect_error_or_success(input,
                              [&] { catalog_specs.push_back(backends::catalog::spec_from_json("fuzz", *s, "fuzz")); });
      continue;
    }
    records.push_back(&p);
    expect_error_or_success(input, [&] { (void)qd::record_values(spec, p); });
  }
  decode_all(input, spec, records);
  for (const auto& s : catalog_specs) {
    decode_all(input, s, records);
  }
  return 0;
}

}  // namespace vstash::fuzz

VSTASH_FUZZ_ENTRY(fuzz_qdrant)
