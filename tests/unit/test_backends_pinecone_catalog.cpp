// SPDX-License-Identifier: MIT
// Pinecone's catalog records (backends/pinecone/pineconerecords.cpp, pineconedatasets.hpp): the
// flat form Pinecone metadata can hold, built from and read through the catalog's spec JSON
// (backends/common/catalog.hpp), and records written by the previous version still read.
#include <doctest/doctest.h>

#include <string>

#include "backends/pinecone/pineconedatasets.hpp"
#include "backends/pinecone/pineconeinternal.hpp"
#include "src/errors.hpp"

using namespace vstash;
using namespace vstash::backends;
using namespace vstash::backends::pinecone;

namespace {

DatasetSpec labelled_spec() {
  DatasetSpec spec;
  spec.name = "mnist";
  spec.dtype = DType::u8;
  spec.row_shape = {28, 28};
  spec.label_dtype = DType::i64;
  spec.label_shape = {};
  spec.metric = Metric::euclidean;
  spec.metadata = {{"source", "mnist.npy"}, {"ingest_watermark", 10}};
  return spec;
}

CatalogEntry labelled_entry(int64_t next_index, int64_t row_bytes) {
  CatalogEntry entry;
  entry.spec = labelled_spec();
  entry.next_index = next_index;
  entry.row_bytes = row_bytes;
  entry.label_field = true;
  return entry;
}

json stored_metadata(const CatalogEntry& entry) { return json::parse(catalog_record(entry, 4)).at("metadata"); }

}  // namespace

TEST_SUITE("pinecone::catalog") {
  TEST_CASE("a catalog record reads back as the entry written, its metadata flat") {
    CatalogEntry entry = labelled_entry(70000, 4321);
    const json md = stored_metadata(entry);
    for (const auto& [key, value] : md.items()) {
      CHECK_MESSAGE(!value.is_structured(), key);  // Pinecone metadata holds no nested values
    }
    const CatalogEntry back = parse_catalog(md);
    CHECK(back.spec.name == "mnist");
    CHECK(back.spec.dtype == DType::u8);
    CHECK(back.spec.row_shape == Shape{28, 28});
    REQUIRE(back.spec.label_dtype);
    CHECK(*back.spec.label_dtype == DType::i64);
    CHECK(back.spec.label_shape.empty());
    CHECK(back.spec.metric == Metric::euclidean);
    CHECK(back.spec.metadata == entry.spec.metadata);
    CHECK(back.next_index == 70000);
    CHECK(back.row_bytes == 4321);
    CHECK(back.label_field);

    entry.spec.label_dtype.reset();
    entry.label_field = false;
    const json unlabelled = stored_metadata(entry);
    CHECK_FALSE(unlabelled.contains("label_dtype"));
    CHECK_FALSE(parse_catalog(unlabelled).spec.label_dtype);
    CHECK_FALSE(parse_catalog(unlabelled).label_field);
  }

  TEST_CASE("records written by the previous version still read") {
    // As the previous version wrote them (pineconerecords.cpp before the catalog): no label
    // keys without labels, no label_field on datasets created before $label, counters as doubles.
    const json old_unlabelled = json::parse(R"({"kind": "dataset", "dataset": "v", "dtype": "float32",
        "shape": "[8]", "metric": "cosine", "metadata": "{\"a\":1}", "next_index": 12.0, "row_bytes": 300.0})");
    const CatalogEntry v = parse_catalog(old_unlabelled);
    CHECK(v.spec.row_shape == Shape{8});
    CHECK_FALSE(v.spec.label_dtype);
    CHECK(v.spec.metadata == json{{"a", 1}});
    CHECK(v.next_index == 12);
    CHECK(v.row_bytes == 300);
    CHECK_FALSE(v.label_field);
    const json old_labelled = json::parse(R"({"kind": "dataset", "dataset": "l", "dtype": "float64",
        "shape": "[2,3]", "metric": "dot", "metadata": "{}", "label_dtype": "int32", "label_shape": "[2]",
        "next_index": 0, "row_bytes": 0, "label_field": true})");
    const CatalogEntry l = parse_catalog(old_labelled);
    CHECK(l.spec.row_shape == Shape{2, 3});
    CHECK(*l.spec.label_dtype == DType::i32);
    CHECK(l.spec.label_shape == Shape{2});
    CHECK(l.label_field);
  }

  TEST_CASE("a corrupt catalog record is one line naming the dataset, never the JSON library's text") {
    for (const char* text : {R"({"dataset": "d", "dtype": "float32", "shape": "[8", "metric": "cosine"})",
                             R"({"dataset": "d", "dtype": "float99", "shape": "[8]", "metric": "cosine"})",
                             R"({"dataset": "d", "dtype": "float32", "shape": "[8]"})",
                             R"({"dataset": "d", "dtype": "float32", "shape": "[1048576, 2]", "metric": "cosine"})"}) {
      try {
        parse_catalog(json::parse(text));
        FAIL("no error for ", text);
      } catch (const Error& e) {
        const std::string what = e.what();
        CHECK_MESSAGE(what.find("pinecone catalog record of dataset \"d\"") == 0, what);
        CHECK_MESSAGE(what.find("[json.exception") == std::string::npos, what);
        CHECK_MESSAGE(what.find('\n') == std::string::npos, what);
      }
    }
  }

  TEST_CASE("the catalog's record keeps pinecone's counters in its extra") {
    const CatalogEntry entry = labelled_entry(5, 900);
    const catalog::DatasetRecord record = DatasetTable::record(entry, "v1");
    CHECK(record.version == "v1");
    CHECK(record.next_index == 5);
    const CatalogEntry back = DatasetTable::entry(record);
    CHECK(back.row_bytes == 900);
    CHECK(back.label_field);
    CHECK(back.spec.metadata == entry.spec.metadata);
  }
}
