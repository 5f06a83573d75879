// SPDX-License-Identifier: MIT
// Pinecone replies (backends/pinecone/pineconeinternal.hpp): byte 0 picks the dataset
// (replyspecs.hpp), the rest is a reply body: a query reply ({"matches": [...]}) or a fetch
// reply ({"vectors": {id: record}}). Each record is decoded as a row and the rows assembled
// into a batch; a catalog record's metadata is parsed as a dataset entry whose spec then
// decodes the same records.
#include <nlohmann/json.hpp>
#include <vector>

#include "backends/pinecone/pineconeinternal.hpp"
#include "fuzz.hpp"
#include "replyspecs.hpp"

namespace vstash::fuzz {

namespace {

namespace pc = backends::pinecone;

void decode_all(std::string_view input, const DatasetSpec& spec, const std::vector<const json*>& records) {
  std::vector<pc::DecodedRow> rows;
  for (const json* r : records) {
    expect_error_or_success(input, [&] { rows.push_back(pc::decode_row(spec, *r)); });
  }
  expect_error_or_success(input, [&] { (void)pc::assemble_rows(spec, rows); });
}

}  // namespace

int fuzz_pinecone(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::string_view input = as_text(data, size);
  const DatasetSpec& spec = reply_spec(data[0]);
  const json body = json::parse(input.substr(1), nullptr, false);
  if (!body.is_object()) {
    return 0;
  }
  std::vector<const json*> records;
  if (auto m = body.find("matches"); m != body.end() && m->is_array()) {
    for (const auto& r : *m) {
      records.push_back(&r);
    }
  }
  if (auto v = body.find("vectors"); v != body.end() && v->is_object()) {
    for (const auto& [id, r] : v->items()) {
      records.push_back(&r);
    }
  }
  std::vector<DatasetSpec> catalog_specs;
  for (const json* r : records) {
    auto md = r->is_object() ? r->find("metadata") : r->end();
    if (md == r->end() || !md->is_object()) {
      continue;
    }
    expect_error_or_success(input, [&] { (void)pc::normalize_numbers(*md); });
    if (md->value("kind", json()) == "dataset") {
      expect_error_or_success(input, [&] { catalog_specs.push_back(pc::parse_catalog(*md).spec); });
    }
  }
  decode_all(input, spec, records);
  for (const auto& s : catalog_specs) {
    decode_all(input, s, records);
  }
  return 0;
}

}  // namespace vstash::fuzz

VSTASH_FUZZ_ENTRY(fuzz_pinecone)
