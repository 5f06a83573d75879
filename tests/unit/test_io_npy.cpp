// SPDX-License-Identifier: MIT
// NPY reading and writing: versions 1-3, every numeric dtype, both byte orders, Fortran order,
// refusals (object, structured, complex) and corrupt or truncated files, block reads.
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/io/npy.hpp"
#include "src/io/npyheader.hpp"
#include "tests/testutil.hpp"

using namespace vstash;

namespace {

const DType k_all_dtypes[] = {DType::f16, DType::f32, DType::f64, DType::i8,  DType::i16, DType::i32,
                              DType::i64, DType::u8,  DType::u16, DType::u32, DType::u64, DType::b1};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// An array whose bytes are all different and valid for the dtype (bool: 0/1), so a wrong
// byte order or element order shows.
Array patterned(DType dtype, Shape shape) {
  Array a(dtype, std::move(shape));
  const size_t item = dtype_size(dtype);
  for (int64_t i = 0; i < a.size(); ++i) {
    std::byte* p = a.data() + static_cast<size_t>(i) * item;
    if (dtype == DType::b1) {
      p[0] = std::byte{static_cast<unsigned char>((i * 7 + 1) % 3 == 0)};
    } else if (dtype == DType::f16) {
      const uint16_t h = float_to_half(static_cast<float>(i) * 0.5f - 3.25f);
      std::memcpy(p, &h, 2);
    } else if (dtype == DType::f32) {
      const float f = static_cast<float>(i) * 1.25f - 7.0f;
      std::memcpy(p, &f, 4);
    } else if (dtype == DType::f64) {
      const double d = static_cast<double>(i) / 3.0 - 11.0;
      std::memcpy(p, &d, 8);
    } else {
      for (size_t b = 0; b < item; ++b) {
        p[b] = std::byte{static_cast<unsigned char>(i * 31 + static_cast<int64_t>(b) * 7 + 1)};
      }
    }
  }
  return a;
}

// A raw NPY file as numpy writes it: magic, version, header length (2 bytes for 1.0, 4 for
// 2.0/3.0), the dict padded with spaces and '\n' to a multiple of 64, then the data.
std::string raw_npy(int major, const std::string& dict, const std::string& data) {
  const size_t len_bytes = major == 1 ? 2 : 4;
  std::string header = dict;
  const size_t total = (6 + 2 + len_bytes + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 6 - 2 - len_bytes - header.size() - 1, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  for (size_t b = 0; b < len_bytes; ++b) {
    out += static_cast<char>((header.size() >> (8 * b)) & 0xff);
  }
  return out + header + data;
}

std::string bytes_of(const Array& a) { return {reinterpret_cast<const char*>(a.data()), a.nbytes()}; }

std::string swapped_bytes(const Array& a) {
  std::string s = bytes_of(a);
  const size_t item = dtype_size(a.dtype());
  for (size_t i = 0; i + item <= s.size(); i += item) {
    std::reverse(s.begin() + static_cast<ptrdiff_t>(i), s.begin() + static_cast<ptrdiff_t>(i + item));
  }
  return s;
}

// C-order array -> the same values laid out in Fortran order (first axis fastest).
std::string fortran_bytes(const Array& a) {
  const auto& shape = a.shape();
  const size_t item = dtype_size(a.dtype());
  const auto n = static_cast<size_t>(a.size());
  std::string out(n * item, '\0');
  std::vector<int64_t> idx(shape.size(), 0);
  for (size_t f = 0; f < n; ++f) {
    size_t c = 0;
    for (size_t k = 0; k < shape.size(); ++k) {
      c = c * static_cast<size_t>(shape[k]) + static_cast<size_t>(idx[k]);
    }
    std::memcpy(out.data() + f * item, a.data() + c * item, item);
    for (size_t k = 0; k < shape.size(); ++k) {  // Fortran: first index fastest
      if (++idx[k] < shape[k]) {
        break;
      }
      idx[k] = 0;
    }
  }
  return out;
}

std::string dict_for(const std::string& descr, bool fortran, const Shape& shape) {
  return fmt::format("{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}", descr, fortran ? "True" : "False",
                     shape_to_string(shape));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("NOT A USAGE ERROR: ") + e.what();
  }
  return "NO ERROR";
}

}  // namespace

TEST_SUITE("io::npy") {
  TEST_CASE("every numeric dtype round-trips bit for bit, with numpy's header layout") {
    const auto dir = testutil::scratch_dir("npy-roundtrip");
    for (DType t : k_all_dtypes) {
      CAPTURE(dtype_name(t));
      const Array a = patterned(t, {5, 3, 2});
      const auto path = (dir / fmt::format("{}.npy", dtype_name(t))).string();
      io::write_npy(path, a);
      const std::string file = slurp(path);
      REQUIRE(file.size() > 64);
      CHECK(file.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
      const auto header_len =
          static_cast<size_t>(static_cast<unsigned char>(file[8]) | (static_cast<unsigned char>(file[9]) << 8));
      CHECK((10 + header_len) % 64 == 0);  // data aligned as numpy aligns it
      CHECK(file.find(fmt::format("'descr': '{}'", io::npy_descr_for(t))) != std::string::npos);
      CHECK(file.find("'shape': (5, 3, 2)") != std::string::npos);
      CHECK(file.size() == 10 + header_len + a.nbytes());
      const Array back = io::read_array(path);
      CHECK(back.dtype() == t);
      CHECK(back.shape() == a.shape());
      CHECK(back == a);
    }
  }

  TEST_CASE("descr codes are numpy's") {
    CHECK(io::npy_descr_for(DType::f16) == "<f2");
    CHECK(io::npy_descr_for(DType::f64) == "<f8");
    CHECK(io::npy_descr_for(DType::i8) == "|i1");
    CHECK(io::npy_descr_for(DType::u64) == "<u8");
    CHECK(io::npy_descr_for(DType::b1) == "|b1");
  }

  TEST_CASE("0-d, 1-d and empty arrays keep their shape") {
    const auto dir = testutil::scratch_dir("npy-shapes");
    for (const Shape& shape : {Shape{}, Shape{7}, Shape{0}, Shape{0, 4}, Shape{3, 0}, Shape{2, 1, 1, 3}}) {
      CAPTURE(shape_to_string(shape));
      const Array a = patterned(DType::i32, shape);
      const auto path = (dir / "a.npy").string();
      io::write_npy(path, a);
      const Array back = io::read_array(path);
      CHECK(back.shape() == shape);
      CHECK(back == a);
    }
  }

  TEST_CASE("versions 1.0, 2.0 and 3.0 read the same") {
    const auto dir = testutil::scratch_dir("npy-versions");
    const Array a = patterned(DType::f32, {4, 3});
    for (int major : {1, 2, 3}) {
      CAPTURE(major);
      const auto path = dir / fmt::format("v{}.npy", major);
      spit(path, raw_npy(major, dict_for("<f4", false, a.shape()), bytes_of(a)));
      CHECK(io::read_array(path.string()) == a);
    }
  }

  TEST_CASE("a header too long for version 1.0 is written as 2.0 and read back") {
    const auto dir = testutil::scratch_dir("npy-v2write");
    // 30000 axes make a dict of about 90 KB, over version 1.0's 64 KiB limit.
    Shape shape(30000, 1);
    shape[0] = 2;
    const Array a = patterned(DType::u16, shape);
    const auto path = (dir / "long.npy").string();
    io::write_npy(path, a);
    const std::string file = slurp(path);
    CHECK(file[6] == '\x02');
    CHECK(io::read_array(path) == a);
  }

  TEST_CASE("big-endian files of every multi-byte dtype convert to native order") {
    const auto dir = testutil::scratch_dir("npy-bigendian");
    for (DType t : k_all_dtypes) {
      CAPTURE(dtype_name(t));
      const Array a = patterned(t, {3, 4});
      std::string descr = io::npy_descr_for(t);
      if (descr[0] == '<') {
        descr[0] = '>';
      }
      const auto path = dir / "be.npy";
      spit(path, raw_npy(1, dict_for(descr, false, a.shape()), swapped_bytes(a)));
      const Array back = io::read_array(path.string());
      CHECK(back.dtype() == t);
      CHECK(back == a);
      // Block reads swap too.
      CHECK(io::open_array(path.string())->read_rows(1, 2) == a.slice_rows(1, 2));
    }
  }

  TEST_CASE("explicit little-endian and native '=' descrs are accepted") {
    const auto dir = testutil::scratch_dir("npy-native");
    const Array a = patterned(DType::i64, {2, 2});
    spit(dir / "n.npy", raw_npy(1, dict_for("=i8", false, a.shape()), bytes_of(a)));
    CHECK(io::read_array((dir / "n.npy").string()) == a);
    const Array b = patterned(DType::u8, {6});
    spit(dir / "u.npy", raw_npy(1, dict_for("<u1", false, b.shape()), bytes_of(b)));
    CHECK(io::read_array((dir / "u.npy").string()) == b);
  }

  TEST_CASE("fortran_order True reads as the same C-order array, whole and in blocks") {
    const auto dir = testutil::scratch_dir("npy-fortran");
    for (const Shape& shape : {Shape{5, 3}, Shape{4, 3, 2}, Shape{3, 2, 2, 2}, Shape{6}, Shape{1, 4}, Shape{0, 3}}) {
      for (bool big : {false, true}) {
        CAPTURE(shape_to_string(shape));
        CAPTURE(big);
        const Array a = patterned(DType::i16, shape);
        Array fa(DType::i16, {static_cast<int64_t>(a.size())});
        const std::string fb = fortran_bytes(a);
        if (!fb.empty()) {  // an empty Array has no buffer to copy into
          std::memcpy(fa.data(), fb.data(), fb.size());
        }
        const auto path = dir / "f.npy";
        spit(path, raw_npy(1, dict_for(big ? ">i2" : "<i2", true, shape), big ? swapped_bytes(fa) : fb));
        const auto p = path.string();
        CHECK(io::read_array(p) == a);
        auto reader = io::open_array(p);
        Array joined;
        for (int64_t first = 0; first < reader->rows(); first += 2) {
          joined.append_rows(reader->read_rows(first, 2));
        }
        if (a.rows() > 0) {
          CHECK(joined == a);
        }
      }
    }
  }

  TEST_CASE("the block reader returns blocks of the requested size") {
    const auto dir = testutil::scratch_dir("npy-blocks");
    const Array a = testutil::random_f32(10, 4, 3);
    const auto path = (dir / "b.npy").string();
    io::write_npy(path, a);
    auto reader = io::open_array(path);
    CHECK(reader->rows() == 10);
    CHECK(reader->dtype() == DType::f32);
    CHECK(reader->shape() == Shape{10, 4});
    std::vector<int64_t> sizes;
    Array joined;
    for (int64_t first = 0; first < reader->rows(); first += 3) {
      Array b = reader->read_rows(first, 3);
      CHECK(b.row_shape() == Shape{4});
      CHECK(b == a.slice_rows(first, b.rows()));
      sizes.push_back(b.rows());
      joined.append_rows(b);
    }
    CHECK(sizes == std::vector<int64_t>{3, 3, 3, 1});
    CHECK(joined == a);
    CHECK(reader->read_rows(10, 5).rows() == 0);
    CHECK(reader->read_rows(4, 0).rows() == 0);
    CHECK_THROWS_AS(reader->read_rows(11, 1), Error);
    CHECK_THROWS_AS(reader->read_rows(-1, 1), Error);
    CHECK(reader->attributes() == nlohmann::json::object());
  }

  TEST_CASE("nonfinite_rows finds every NaN/Inf row, mapped or read, in any byte order and layout") {
    const auto dir = testutil::scratch_dir("npy-nonfinite");
    // 3000 rows x 7 float32: the data spans pages and starts mid-page (after the header).
    Array a = testutil::random_f32(3000, 7, 5);
    const std::vector<int64_t> bad = {0, 1023, 1024, 2999};
    a.as<float>()[0 * 7 + 6] = std::numeric_limits<float>::quiet_NaN();
    a.as<float>()[1023 * 7 + 0] = std::numeric_limits<float>::infinity();
    a.as<float>()[1024 * 7 + 3] = -std::numeric_limits<float>::infinity();
    a.as<float>()[2999 * 7 + 6] = std::numeric_limits<float>::quiet_NaN();
    const auto c_order = (dir / "c.npy").string();
    io::write_npy(c_order, a);
    CHECK(io::open_array(c_order)->nonfinite_rows(1000) == bad);  // mapped
    const auto big = dir / "be.npy";                              // byte-swapped: read block by block
    spit(big, raw_npy(1, dict_for(">f4", false, a.shape()), swapped_bytes(a)));
    CHECK(io::open_array(big.string())->nonfinite_rows(1000) == bad);
    const std::string fb = fortran_bytes(a);
    const auto fortran = dir / "f.npy";  // Fortran order: read block by block
    spit(fortran, raw_npy(1, dict_for("<f4", true, a.shape()), fb));
    CHECK(io::open_array(fortran.string())->nonfinite_rows(700) == bad);
    // A finite file, and integers (never NaN), hold none.
    io::write_npy(c_order, testutil::random_f32(10, 3, 1));
    CHECK(io::open_array(c_order)->nonfinite_rows(4).empty());
    io::write_npy(c_order, patterned(DType::i32, {4, 2}));
    CHECK(io::open_array(c_order)->nonfinite_rows(4).empty());
  }

  TEST_CASE("object (pickled) arrays are refused with a clear message") {
    const auto dir = testutil::scratch_dir("npy-object");
    const auto path = dir / "o.npy";
    // What np.save(allow_pickle=True) writes for an object array: '|O' then a pickle.
    spit(path, raw_npy(1, dict_for("|O", false, {2}), "\x80\x04\x95 pickle bytes ..."));
    const std::string msg = error_of([&] { io::read_array(path.string()); });
    CHECK(msg.find(path.string()) == 0);
    CHECK(msg.find("object arrays (pickled Python objects) are not supported") != std::string::npos);
  }

  TEST_CASE("structured, complex, datetime and odd dtypes are refused naming the dtype") {
    const auto dir = testutil::scratch_dir("npy-unsupported");
    const auto path = dir / "x.npy";
    const std::pair<std::string, std::string> cases[] = {
        {"{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }", "structured"},
        {dict_for("<c8", false, {2}), "complex"},
        {dict_for("<M8[ns]", false, {2}), "unsupported dtype '<M8[ns]'"},
        {dict_for("<f16", false, {2}), "unsupported dtype '<f16'"},
        {dict_for("<i3", false, {2}), "unsupported dtype '<i3'"},
        {dict_for("<V8", false, {2}), "unsupported dtype"},
        {dict_for("", false, {2}), "empty dtype"},
    };
    for (const auto& [dict, expect] : cases) {
      CAPTURE(dict);
      spit(path, raw_npy(1, dict, std::string(64, '\0')));
      const std::string msg = error_of([&] { io::read_array(path.string()); });
      CHECK(msg.find(path.string()) == 0);
      CHECK(msg.find(expect) != std::string::npos);
    }
  }

  TEST_CASE("malformed headers are refused naming the file and the fault") {
    const auto dir = testutil::scratch_dir("npy-malformed");
    const auto path = dir / "m.npy";
    const std::pair<std::string, std::string> cases[] = {
        {"['descr', '<f4']", "not a dict"},
        {"{'descr': '<f4', 'fortran_order': False, }", "missing 'shape'"},
        {"{'descr': '<f4', 'shape': (2,), }", "missing 'fortran_order'"},
        {"{'fortran_order': False, 'shape': (2,), }", "missing 'descr'"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", "'fortran_order' is not True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", "'shape' is not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "shape entries must be integers >= 0"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "unexpected key 'extra'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", "expected ',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", "unexpected text after the dict"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", "malformed NPY header"},
        {"{'descr': 5, 'fortran_order': False, 'shape': (2,), }", "'descr' is not a string"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "integer too large"},
        {std::string(40, '(') + std::string(40, ')'), "nesting too deep"},
    };
    for (const auto& [dict, expect] : cases) {
      CAPTURE(dict);
      spit(path, raw_npy(1, dict, std::string(8, '\0')));
      const std::string msg = error_of([&] { io::read_array(path.string()); });
      CHECK(msg.find(path.string()) == 0);
      CHECK(msg.find(expect) != std::string::npos);
    }
  }

  TEST_CASE("bad magic, unknown versions and short preambles are refused") {
    const auto dir = testutil::scratch_dir("npy-preamble");
    const auto path = dir / "p.npy";
    const auto p = path.string();
    const Array a = patterned(DType::f32, {2});
    const std::string good = raw_npy(1, dict_for("<f4", false, {2}), bytes_of(a));

    spit(path, "");
    CHECK(error_of([&] { io::read_array(p); }).find("empty file") != std::string::npos);
    spit(path, "PK\x03\x04 this is a zip file, not an array");
    CHECK(error_of([&] { io::read_array(p); }).find("not an NPY file (bad magic)") != std::string::npos);
    std::string v4 = good;
    v4[6] = '\x04';
    spit(path, v4);
    CHECK(error_of([&] { io::read_array(p); }).find("unsupported NPY format version 4.0") != std::string::npos);
    std::string v0 = good;
    v0[6] = '\x00';
    spit(path, v0);
    CHECK(error_of([&] { io::read_array(p); }).find("unsupported NPY format version 0.0") != std::string::npos);
    spit(path, good.substr(0, 8));
    CHECK(error_of([&] { io::read_array(p); }).find("truncated") != std::string::npos);
    // A 2.0 preamble needs 12 bytes.
    spit(path, std::string("\x93NUMPY\x02\x00\x10\x00", 10));
    CHECK(error_of([&] { io::read_array(p); }).find("truncated") != std::string::npos);
    // Header length beyond the end of the file, and implausibly long.
    std::string longer = good;
    longer[8] = '\xff';
    longer[9] = '\x7f';
    spit(path, longer);
    CHECK(error_of([&] { io::read_array(p); }).find("truncated: header says") != std::string::npos);
    spit(path, std::string("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12) + std::string(100, ' '));
    CHECK(error_of([&] { io::read_array(p); }).find("implausible") != std::string::npos);
    spit(path, good);
    CHECK(io::read_array(p) == a);
  }

  TEST_CASE("data shorter or longer than the header says is refused") {
    const auto dir = testutil::scratch_dir("npy-size");
    const auto path = dir / "s.npy";
    const auto p = path.string();
    const Array a = patterned(DType::f64, {4, 2});
    const std::string good = raw_npy(1, dict_for("<f8", false, a.shape()), bytes_of(a));
    spit(path, good.substr(0, good.size() - 1));
    std::string msg = error_of([&] { io::read_array(p); });
    CHECK(msg.find(p) == 0);
    CHECK(msg.find("truncated: header says 64 bytes of data ((4, 2) '<f8'), file has 63") != std::string::npos);
    spit(path, good + "x");
    CHECK(error_of([&] { io::read_array(p); }).find("1 bytes after the array data") != std::string::npos);
  }

  TEST_CASE("a shape larger than the file is refused before anything is allocated") {
    // 10^12 x 10^6 float32 would be 4 exabytes: an allocation attempt would throw bad_alloc
    // (or abort under ASan), so a UsageError here proves the check comes first.
    const auto dir = testutil::scratch_dir("npy-huge");
    const auto path = dir / "h.npy";
    const auto p = path.string();
    spit(path, raw_npy(1, dict_for("<f4", false, {1000000000000, 1000000}), std::string(128, '\0')));
    std::string msg = error_of([&] { io::open_array(p); });
    CHECK(msg.find("truncated: header says") != std::string::npos);
    spit(path, raw_npy(3, dict_for("<f8", true, {4611686018427387904, 4}), std::string(128, '\0')));
    msg = error_of([&] { io::open_array(p); });
    CHECK(msg.find("shape (4611686018427387904, 4) is too large") != std::string::npos);
    spit(path, raw_npy(1, dict_for("<U1000000000", false, {1000000000}), std::string(128, '\0')));
    msg = error_of([&] { io::read_strings(p); });
    CHECK(msg.find("truncated: header says") != std::string::npos);
  }

  TEST_CASE("every truncation of a valid file is refused cleanly") {
    const auto dir = testutil::scratch_dir("npy-prefix");
    const auto path = dir / "t.npy";
    const Array a = patterned(DType::i32, {3, 5});
    const std::string good = raw_npy(2, dict_for("<i4", true, a.shape()), fortran_bytes(a));
    for (size_t n = 0; n < good.size(); ++n) {
      CAPTURE(n);
      spit(path, good.substr(0, n));
      CHECK_THROWS_AS(io::read_array(path.string()), UsageError);
    }
    spit(path, good);
    CHECK(io::read_array(path.string()) == a);
  }

  TEST_CASE("random corruption of the header never crashes") {
    const auto dir = testutil::scratch_dir("npy-fuzz");
    const auto path = dir / "z.npy";
    const Array a = patterned(DType::u16, {4, 4});
    const std::string good = raw_npy(1, dict_for("<u2", false, a.shape()), bytes_of(a));
    std::mt19937 rng(7);
    int refused = 0;
    for (int round = 0; round < 2000; ++round) {
      std::string bad = good;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        bad[rng() % 64] = static_cast<char>(rng() & 0xff);
      }
      spit(path, bad);
      try {
        const Array back = io::read_array(path.string());
        CHECK(static_cast<uint64_t>(back.nbytes()) <= bad.size());
      } catch (const Error&) {
        ++refused;
      }
    }
    CHECK(refused > 0);
  }

  TEST_CASE("unicode and bytes arrays read as strings; numbers are refused as strings") {
    const auto dir = testutil::scratch_dir("npy-strings");
    const std::vector<std::string> ids = {"a", "row-1", "\xc3\xa9t\xc3\xa9", "\xf0\x9f\x90\x8d snake", ""};
    const auto path = (dir / "ids.npy").string();
    io::write_npy_strings(path, ids);
    CHECK(slurp(path).find("'descr': '<U7'") != std::string::npos);
    CHECK(io::npy_holds_strings(path));
    CHECK(io::is_string_array(path));
    CHECK(io::read_strings(path) == ids);
    CHECK(error_of([&] { io::open_array(path); }).find("holds strings ('<U7'), not numbers") != std::string::npos);

    // Big-endian unicode and the bytes ('S') kind, as numpy writes them.
    std::string be;
    for (char32_t c : std::u32string(U"ab\0cd\0", 6)) {
      for (int b = 3; b >= 0; --b) {
        be += static_cast<char>((static_cast<uint32_t>(c) >> (8 * b)) & 0xff);
      }
    }
    spit(dir / "be.npy", raw_npy(1, dict_for(">U3", false, {2}), be));
    CHECK(io::read_strings((dir / "be.npy").string()) == std::vector<std::string>{"ab", "cd"});
    spit(dir / "s.npy", raw_npy(1, dict_for("|S4", false, {3}), std::string("abcdxy\0\0z\0\0\0", 12)));
    CHECK(io::read_strings((dir / "s.npy").string()) == std::vector<std::string>{"abcd", "xy", "z"});

    const auto nums = (dir / "n.npy").string();
    io::write_npy(nums, patterned(DType::i32, {3}));
    CHECK(!io::is_string_array(nums));
    CHECK(error_of([&] { io::read_strings(nums); }).find("holds int32, not strings") != std::string::npos);
    spit(dir / "bad.npy", raw_npy(1, dict_for("<U1", false, {1}), std::string("\x00\xd8\x00\x00", 4)));
    CHECK(error_of([&] { io::read_strings((dir / "bad.npy").string()); }).find("invalid code point") !=
          std::string::npos);
    CHECK_THROWS_AS(io::write_npy_strings((dir / "x.npy").string(), {"ok", "\xff\xfe"}), UsageError);
    CHECK(!std::filesystem::exists(dir / "x.npy"));
  }

  TEST_CASE("write_npy_stream writes the same bytes as write_npy") {
    const auto dir = testutil::scratch_dir("npy-stream");
    const Array a = patterned(DType::f16, {3, 3});
    const auto path = dir / "file.npy";
    io::write_npy(path.string(), a);
    std::FILE* f = std::fopen((dir / "stream.npy").c_str(), "wb");
    REQUIRE(f != nullptr);
    io::write_npy_stream(f, a);
    std::fclose(f);
    CHECK(slurp(dir / "stream.npy") == slurp(path));
  }

  TEST_CASE("a missing or unreadable file is a usage error naming it") {
    const auto dir = testutil::scratch_dir("npy-missing");
    const auto p = (dir / "nope.npy").string();
    CHECK(error_of([&] { io::read_array(p); }) == p + ": no such file");
    std::filesystem::create_directories(dir / "d.npy");
    const std::string msg = error_of([&] { io::read_array((dir / "d.npy").string()); });
    CHECK(msg.find((dir / "d.npy").string()) == 0);
    CHECK(msg.find("not a regular file") != std::string::npos);
  }

  TEST_CASE("NpyBlockWriter writes write_npy's bytes block by block, fixing or refusing a changed count") {
    const auto dir = testutil::scratch_dir("npy-blocks");
    for (const DType t : k_all_dtypes) {
      CAPTURE(dtype_name(t));
      const Array a = patterned(t, {37, 3, 2});
      io::write_npy((dir / "whole.npy").string(), a);
      io::NpyBlockWriter w((dir / "blocks.npy").string(), t, {3, 2}, 37);
      for (int64_t first = 0; first < 37; first += 10) {
        w.append(a.slice_rows(first, std::min<int64_t>(10, 37 - first)));
      }
      w.finish();
      w.commit();
      CHECK(slurp(dir / "blocks.npy") == slurp(dir / "whole.npy"));
    }
    // Fewer rows than promised, same header length: the header is rewritten in place.
    const Array a = patterned(DType::f32, {12, 4});
    io::write_npy((dir / "whole.npy").string(), a.slice_rows(0, 11));
    {
      io::NpyBlockWriter w((dir / "short.npy").string(), DType::f32, {4}, 12);
      w.append(a.slice_rows(0, 11));
      w.finish();
      w.commit();
    }
    CHECK(slurp(dir / "short.npy") == slurp(dir / "whole.npy"));
    // Destroyed before commit(): nothing is left behind.
    std::filesystem::create_directories(dir / "gone");
    {
      io::NpyBlockWriter w((dir / "gone" / "x.npy").string(), DType::f32, {4}, 3);
      w.append(a.slice_rows(0, 2));
      w.finish();
    }
    CHECK(std::filesystem::is_empty(dir / "gone"));
  }

  TEST_CASE("NpyBlockWriter refuses a count change its header cannot hold, leaving nothing") {
    const auto dir = testutil::scratch_dir("npy-blocks-grow");
    // Find a row shape and a row count whose header is one 64-byte step longer than 1 row's.
    auto header_len = [](int64_t rows, const Shape& row_shape) {
      Shape s{rows};
      s.insert(s.end(), row_shape.begin(), row_shape.end());
      return io::make_npy_header("<f4", s).size();
    };
    Shape row_shape;
    int64_t grown = 0;
    for (int dims = 1; dims < 40 && grown == 0; ++dims) {
      row_shape.assign(static_cast<size_t>(dims), 1);
      for (int64_t n = 10; n <= int64_t{1000000000000}; n *= 10) {
        if (header_len(n, row_shape) != header_len(1, row_shape)) {
          grown = n;
          break;
        }
      }
    }
    REQUIRE(grown > 0);
    {
      // Promised `grown` rows (the longer header), wrote 1: the short header does not fit.
      io::NpyBlockWriter w((dir / "x.npy").string(), DType::f32, row_shape, grown);
      Shape one{1};
      one.insert(one.end(), row_shape.begin(), row_shape.end());
      w.append(Array(DType::f32, one));
      CHECK_THROWS_AS(w.finish(), RetryableError);
    }
    CHECK(std::filesystem::is_empty(dir));
  }

  TEST_CASE("NpyStringsBlockWriter writes write_npy_strings's bytes from spooled blocks") {
    const auto dir = testutil::scratch_dir("npy-string-blocks");
    const std::vector<std::string> ids = {"a", "", "\xc3\xa9t\xc3\xa9", "longest-id-of-all", "x", "\xf0\x9f\x99\x82"};
    io::write_npy_strings((dir / "whole.npy").string(), ids);
    io::NpyStringsBlockWriter w((dir / "blocks.npy").string());
    w.append({ids.begin(), ids.begin() + 4});
    w.append({});
    w.append({ids.begin() + 4, ids.end()});
    w.finish();
    w.commit();
    CHECK(slurp(dir / "blocks.npy") == slurp(dir / "whole.npy"));
    io::NpyStringsBlockWriter bad((dir / "bad.npy").string());
    CHECK_THROWS_AS(bad.append({"ok", std::string("\xff")}), UsageError);
  }
}
