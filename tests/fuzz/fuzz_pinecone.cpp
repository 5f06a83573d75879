// SPDX-License-Identifier: MIT
// Pinecone replies, as the backend reads them: byte 0 picks the dataset (bits 0-1,
// replyspecs.hpp) and the request (bit 2: /query, /vectors/fetch), the rest is the reply body.
// A body that fails the request's shape check (check_data_reply, pineconeinternal.hpp) is the
// HTTP layer's to refuse; the records of one that passes (query matches, fetched vectors) are
// decoded as rows and assembled into a batch. A catalog record's metadata is parsed as a
// dataset entry whose spec then decodes the same records.
#include <nlohmann/json.hpp>
#include <vector>

#include "backends/pinecone/pineconeinternal.hpp"
#include "tests/fuzz/fuzz.hpp"
#include "tests/fuzz/replyspecs.hpp"

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
  const DatasetSpec& spec = reply_spec(data[0] & 3);
  const bool fetch = (data[0] & 4) != 0;
  backends::http::Response reply;
  reply.status = 200;
  reply.body = input.substr(1);
  try {
    pc::check_data_reply(fetch ? "/vectors/fetch" : "/query", reply);
  } catch (const backends::http::BadReply&) {
    return 0;
  } catch (const json::exception&) {
    return 0;  // the HTTP layer treats these as a bad reply too
  }
  const json& body = reply.parsed;
  std::vector<const json*> records;
  if (!fetch) {
    for (const auto& r : body.at("matches")) {
      records.push_back(&r);
    }
  } else if (auto v = body.find("vectors"); v != body.end()) {
    for (const auto& [id, r] : v->items()) {
      records.push_back(&r);
    }
  }
  std::vector<DatasetSpec> catalog_specs;
  for (const json* r : records) {
    auto md = r->find("metadata");
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
