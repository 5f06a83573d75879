// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include "backends/common/rowcodec.hpp"
#include "backends/common/scoring.hpp"
#include "src/errors.hpp"
#include "src/util/base64.hpp"
#include "tests/testutil.hpp"

using namespace vstash;

TEST_SUITE("util::base64") {
  TEST_CASE("encodes the RFC 4648 test vectors and decodes them back") {
    const std::pair<std::string, std::string> vectors[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, encoded] : vectors) {
      auto bytes = std::as_bytes(std::span(plain.data(), plain.size()));
      CHECK(util::base64_encode(bytes) == encoded);
      auto back = util::base64_decode(encoded);
      CHECK(std::string(reinterpret_cast<const char*>(back.data()), back.size()) == plain);
    }
  }
  TEST_CASE("rejects malformed input") {
    CHECK_THROWS_AS(util::base64_decode("Zm9"), Error);
    CHECK_THROWS_AS(util::base64_decode("Zm!v"), Error);
    CHECK_THROWS_AS(util::base64_decode("Z=9v"), Error);
  }
}

TEST_SUITE("backends::rowcodec") {
  TEST_CASE("arrays of every dtype and rank round-trip bit for bit") {
    for (DType t : {DType::f16, DType::f32, DType::f64, DType::i8, DType::i64, DType::u16, DType::b1}) {
      for (const Shape& s : {Shape{}, Shape{5}, Shape{2, 3, 4}, Shape{0, 7}}) {
        Array a(t, s);
        for (size_t i = 0; i < a.nbytes(); ++i) {
          a.data()[i] = static_cast<std::byte>(t == DType::b1 ? i % 2 : i * 37 + 11);
        }
        CHECK(backends::decode_array(backends::encode_array(a)) == a);
      }
    }
  }
  TEST_CASE("a truncated or foreign blob is refused") {
    auto blob = backends::encode_array(testutil::random_f32(3, 4, 1));
    CHECK_THROWS_AS(backends::decode_array(blob.substr(0, blob.size() - 1)), Error);
    CHECK_THROWS_AS(backends::decode_array("nope"), Error);
  }
}

TEST_SUITE("backends::scoring") {
  TEST_CASE("scores follow the documented definitions") {
    const float a[] = {1, 0}, b[] = {0, 2}, c[] = {2, 0};
    CHECK(backends::exact_score(backends::Metric::cosine, a, c, 2) == doctest::Approx(1.0));
    CHECK(backends::exact_score(backends::Metric::cosine, a, b, 2) == doctest::Approx(0.0));
    CHECK(backends::exact_score(backends::Metric::dot, a, c, 2) == doctest::Approx(2.0));
    CHECK(backends::exact_score(backends::Metric::euclidean, a, b, 2) == doctest::Approx(std::sqrt(5.0)));
  }
  TEST_CASE("top-k keeps the best scores, best first, ties by lower index") {
    backends::TopK top(backends::Metric::euclidean, 3);
    const double scores[] = {5, 1, 3, 1, 9, 0.5};
    for (int i = 0; i < 6; ++i) {
      top.offer(scores[i], i, static_cast<size_t>(i));
    }
    auto best = top.take_sorted();
    REQUIRE(best.size() == 3);
    CHECK(best[0].index == 5);
    CHECK(best[1].index == 1);
    CHECK(best[2].index == 3);
  }
}

TEST_SUITE("core::Array") {
  TEST_CASE("float16 conversion is exact for representable values and rounds to nearest even") {
    for (float f : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f}) {
      CHECK(half_to_float(float_to_half(f)) == f);
    }
    CHECK(half_to_float(float_to_half(1.0f + 1.0f / 4096)) == 1.0f);
    CHECK(std::isinf(half_to_float(float_to_half(1e6f))));
  }
  TEST_CASE("slicing and appending rows keep dtype and row shape") {
    Array a = testutil::random_f32(10, 4, 7);
    Array head = a.slice_rows(0, 4);
    Array tail = a.slice_rows(4, 6);
    head.append_rows(tail);
    CHECK(head == a);
    Array other(DType::f64, {2, 4});
    CHECK_THROWS_AS(head.append_rows(other), UsageError);
  }
}
