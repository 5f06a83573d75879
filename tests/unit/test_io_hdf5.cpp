// SPDX-License-Identifier: MIT
// HDF5 reading and writing: FILE.h5:/group/dataset addressing, every dtype, chunked + gzip
// datasets (ours and foreign ones), big-endian types, string datasets, attributes, errors
// that name the path, block reads and atomic replacement.
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <hdf5.h>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "src/errors.hpp"
#include "src/io/arrayfile.hpp"
#include "src/io/hdf5.hpp"
#include "src/io/hdf5handle.hpp"
#include "tests/testutil.hpp"

using namespace vstash;
using io::hdf5::Hid;

namespace {

const DType k_all_dtypes[] = {DType::f16, DType::f32, DType::f64, DType::i8,  DType::i16, DType::i32,
                              DType::i64, DType::u8,  DType::u16, DType::u32, DType::u64, DType::b1};

Array patterned(DType dtype, Shape shape) {
  Array a(dtype, std::move(shape));
  const size_t item = dtype_size(dtype);
  for (int64_t i = 0; i < a.size(); ++i) {
    std::byte* p = a.data() + static_cast<size_t>(i) * item;
    if (dtype == DType::b1) {
      p[0] = std::byte{static_cast<unsigned char>(i % 3 == 0)};
    } else if (dtype == DType::f16) {
      const uint16_t h = float_to_half(static_cast<float>(i) * 0.25f - 2.0f);
      std::memcpy(p, &h, 2);
    } else if (dtype == DType::f32) {
      const float f = static_cast<float>(i) * 1.5f - 9.0f;
      std::memcpy(p, &f, 4);
    } else if (dtype == DType::f64) {
      const double d = static_cast<double>(i) / 7.0 - 3.0;
      std::memcpy(p, &d, 8);
    } else {
      for (size_t b = 0; b < item; ++b) {
        p[b] = std::byte{static_cast<unsigned char>(i * 13 + static_cast<int64_t>(b) * 5 + 3)};
      }
    }
  }
  return a;
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

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Files in dir other than the given ones (temporaries left behind by a failed write).
std::vector<std::string> other_files(const std::filesystem::path& dir, const std::vector<std::string>& expected) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (std::find(expected.begin(), expected.end(), name) == expected.end()) {
      out.push_back(name);
    }
  }
  return out;
}

// A file written with the C API directly, as another program (h5py, a C tool) would.
struct RawFile {
  Hid file;
  explicit RawFile(const std::string& path) : file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) {
    REQUIRE(file);
  }
  Hid dataset(const std::string& path, hid_t type, const std::vector<hsize_t>& dims, hid_t dcpl = H5P_DEFAULT) {
    Hid space(dims.empty() ? H5Screate(H5S_SCALAR)
                           : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    Hid lcpl(H5Pcreate(H5P_LINK_CREATE));
    H5Pset_create_intermediate_group(lcpl.get(), 1);
    Hid ds(H5Dcreate2(file.get(), path.c_str(), type, space.get(), lcpl.get(), dcpl, H5P_DEFAULT));
    REQUIRE(ds);
    return ds;
  }
};

}  // namespace

TEST_SUITE("io::hdf5") {
  TEST_CASE("every dtype round-trips through FILE.h5:/group/dataset") {
    const auto dir = testutil::scratch_dir("h5-roundtrip");
    const auto file = (dir / "all.h5").string();
    for (DType t : k_all_dtypes) {
      CAPTURE(dtype_name(t));
      const Array a = patterned(t, {6, 2, 3});
      const std::string spec = fmt::format("{}:/group/sub/{}", file, dtype_name(t));
      io::write_array(spec, a);
      auto reader = io::open_array(spec);
      CHECK(reader->dtype() == t);
      CHECK(reader->shape() == a.shape());
      CHECK(reader->read_rows(0, reader->rows()) == a);
    }
    // Each write kept the datasets written before it.
    auto all = io::list_hdf5_datasets(file);
    CHECK(all.size() == std::size(k_all_dtypes));
    CHECK(std::find(all.begin(), all.end(), "/group/sub/float16") != all.end());
    CHECK(io::read_array(file + ":/group/sub/bool") == patterned(DType::b1, {6, 2, 3}));
  }

  TEST_CASE("h5py's conventions: bool is an int8 FALSE/TRUE enum, float16 an IEEE half") {
    const auto dir = testutil::scratch_dir("h5-types");
    const auto file = (dir / "t.h5").string();
    io::write_array(file + ":/b", patterned(DType::b1, {4}));
    io::write_array(file + ":/h", patterned(DType::f16, {4}));
    Hid f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    REQUIRE(f);
    Hid b(H5Dopen2(f.get(), "/b", H5P_DEFAULT));
    Hid bt(H5Dget_type(b.get()));
    CHECK(H5Tget_class(bt.get()) == H5T_ENUM);
    CHECK(H5Tget_size(bt.get()) == 1);
    Hid h(H5Dopen2(f.get(), "/h", H5P_DEFAULT));
    Hid ht(H5Dget_type(h.get()));
    CHECK(H5Tget_class(ht.get()) == H5T_FLOAT);
    CHECK(H5Tget_size(ht.get()) == 2);
    CHECK(H5Tget_precision(ht.get()) == 16);
    CHECK(H5Tget_ebias(ht.get()) == 15);
  }

  TEST_CASE("0-d and empty datasets keep their shape") {
    const auto dir = testutil::scratch_dir("h5-shapes");
    const auto file = (dir / "s.h5").string();
    for (const Shape& shape : {Shape{}, Shape{5}, Shape{0}, Shape{0, 3}, Shape{2, 0}}) {
      CAPTURE(shape_to_string(shape));
      const Array a = patterned(DType::u32, shape);
      io::write_array(file + ":/x", a);
      const Array back = io::read_array(file + ":/x");
      CHECK(back.shape() == shape);
      CHECK(back == a);
    }
  }

  TEST_CASE("large arrays are written chunked and gzip-compressed, and read back in blocks") {
    const auto dir = testutil::scratch_dir("h5-chunked");
    const auto file = (dir / "big.h5").string();
    const Array a = testutil::random_f32(5000, 64, 11);  // 1.28 MB, over the 1 MiB threshold
    io::write_array(file + ":/train", a);
    {
      Hid f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
      Hid ds(H5Dopen2(f.get(), "/train", H5P_DEFAULT));
      Hid dcpl(H5Dget_create_plist(ds.get()));
      CHECK(H5Pget_layout(dcpl.get()) == H5D_CHUNKED);
      hsize_t chunk[2] = {};
      CHECK(H5Pget_chunk(dcpl.get(), 2, chunk) == 2);
      CHECK(chunk[1] == 64);  // chunks of whole rows
      CHECK(chunk[0] == (size_t{1} << 20) / (64 * 4));
      CHECK(H5Pget_nfilters(dcpl.get()) == 1);
      unsigned flags = 0;
      size_t nelmts = 1;
      unsigned level = 0;
      CHECK(H5Pget_filter2(dcpl.get(), 0, &flags, &nelmts, &level, 0, nullptr, nullptr) == H5Z_FILTER_DEFLATE);
      CHECK(level == 4);
    }
    auto reader = io::open_array(file + ":/train");
    std::vector<int64_t> sizes;
    Array joined;
    for (int64_t first = 0; first < reader->rows(); first += 1024) {
      Array b = reader->read_rows(first, 1024);
      CHECK(b == a.slice_rows(first, b.rows()));
      sizes.push_back(b.rows());
      joined.append_rows(b);
    }
    CHECK(sizes == std::vector<int64_t>{1024, 1024, 1024, 1024, 904});
    CHECK(joined == a);
    // Small arrays stay contiguous.
    io::write_array(file + ":/small", patterned(DType::i8, {10, 10}));
    Hid f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    Hid ds(H5Dopen2(f.get(), "/small", H5P_DEFAULT));
    Hid dcpl(H5Dget_create_plist(ds.get()));
    CHECK(H5Pget_layout(dcpl.get()) == H5D_CONTIGUOUS);
  }

  TEST_CASE("foreign files: big-endian types and gzip chunks that cut across rows") {
    const auto dir = testutil::scratch_dir("h5-foreign");
    const auto file = (dir / "f.h5").string();
    const Array i32 = patterned(DType::i32, {11, 5});
    const Array f64 = patterned(DType::f64, {9, 2, 2});
    const Array u16 = patterned(DType::u16, {7});
    {
      RawFile raw(file);
      Hid dcpl(H5Pcreate(H5P_DATASET_CREATE));
      const hsize_t chunk[2] = {4, 3};
      H5Pset_chunk(dcpl.get(), 2, chunk);
      H5Pset_shuffle(dcpl.get());
      H5Pset_deflate(dcpl.get(), 9);
      Hid a = raw.dataset("/g/i32be", H5T_STD_I32BE, {11, 5}, dcpl.get());
      REQUIRE(H5Dwrite(a.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, i32.data()) >= 0);
      Hid b = raw.dataset("/g/f64be", H5T_IEEE_F64BE, {9, 2, 2});
      REQUIRE(H5Dwrite(b.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, f64.data()) >= 0);
      Hid c = raw.dataset("/u16be", H5T_STD_U16BE, {7});
      REQUIRE(H5Dwrite(c.get(), H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, u16.data()) >= 0);
    }
    CHECK(io::read_array(file + ":/g/i32be") == i32);
    CHECK(io::read_array(file + ":/g/f64be") == f64);
    CHECK(io::read_array(file + ":/u16be") == u16);
    auto reader = io::open_array(file + ":/g/i32be");
    CHECK(reader->read_rows(3, 5) == i32.slice_rows(3, 5));
    CHECK(reader->read_rows(9, 100) == i32.slice_rows(9, 2));
    CHECK_THROWS_AS(reader->read_rows(12, 1), Error);
  }

  TEST_CASE("variable-length string datasets (ids) round-trip; fixed-length ones read") {
    const auto dir = testutil::scratch_dir("h5-strings");
    const auto file = (dir / "ids.h5").string();
    const std::vector<std::string> ids = {"a", "row-2", "\xc3\xa9t\xc3\xa9", std::string(300, 'x'), ""};
    io::write_strings(file + ":/meta/ids", ids);
    CHECK(io::is_string_array(file + ":/meta/ids"));
    CHECK(io::read_strings(file + ":/meta/ids") == ids);
    {
      Hid f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
      Hid ds(H5Dopen2(f.get(), "/meta/ids", H5P_DEFAULT));
      Hid t(H5Dget_type(ds.get()));
      CHECK(H5Tis_variable_str(t.get()) > 0);
      CHECK(H5Tget_cset(t.get()) == H5T_CSET_UTF8);
    }
    // Without a dataset path the strings go to /ids of a fresh file.
    io::write_strings((dir / "only.h5").string(), {"p", "q"});
    CHECK(io::list_hdf5_datasets((dir / "only.h5").string()) == std::vector<std::string>{"/ids"});
    CHECK(io::read_strings((dir / "only.h5").string()) == std::vector<std::string>{"p", "q"});

    const auto fixed = (dir / "fixed.h5").string();
    {
      RawFile raw(fixed);
      for (auto [name, pad] :
           {std::pair{"/nullpad", H5T_STR_NULLPAD}, {"/nullterm", H5T_STR_NULLTERM}, {"/spacepad", H5T_STR_SPACEPAD}}) {
        Hid t(H5Tcopy(H5T_C_S1));
        H5Tset_size(t.get(), 4);
        H5Tset_strpad(t.get(), pad);
        Hid ds = raw.dataset(name, t.get(), {3});
        const char* text = pad == H5T_STR_SPACEPAD ? "ab  abcdc   " : "ab\0\0abcdc\0\0\0";
        REQUIRE(H5Dwrite(ds.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, text) >= 0);
      }
    }
    for (const char* name : {"/nullpad", "/spacepad"}) {
      CAPTURE(name);
      CHECK(io::read_strings(fixed + ":" + name) == std::vector<std::string>{"ab", "abcd", "c"});
    }
    // NULLTERM keeps room for the terminator: HDF5 cuts "abcd" to "abc" on write.
    CHECK(io::read_strings(fixed + ":/nullterm").size() == 3);
    CHECK(contains(error_of([&] { io::open_array(file + ":/meta/ids"); }), "holds strings, not numbers"));
    io::write_array(file + ":/nums", patterned(DType::i64, {2}));
    CHECK(contains(error_of([&] { io::read_strings(file + ":/nums"); }), "holds int64, not strings"));
    CHECK(!io::is_string_array(file + ":/nums"));
  }

  TEST_CASE("root attributes of every JSON kind round-trip; dataset attributes are read") {
    const auto dir = testutil::scratch_dir("h5-attrs");
    const auto file = (dir / "a.h5").string();
    const Array data = patterned(DType::f32, {3, 2});
    const nlohmann::json attrs = {
        {"distance", "angular"},    {"epoch", 7},        {"loss", 0.125},       {"done", true},
        {"big", uint64_t{1} << 63}, {"dims", {1, 2, 3}}, {"weights", {0.5, 1}}, {"names", {"a", "b"}},
        {"nested", {{"k", "v"}}},   {"neg", -5},
    };
    io::write_arrays(file, {{"data", data}}, {}, attrs);
    const auto back = io::read_hdf5_file_attributes(file);
    CHECK(back["distance"] == "angular");
    CHECK(back["epoch"] == 7);
    CHECK(back["loss"] == 0.125);
    CHECK(back["done"] == true);
    CHECK(back["big"] == uint64_t{1} << 63);
    CHECK(back["dims"] == nlohmann::json({1, 2, 3}));
    CHECK(back["weights"] == nlohmann::json({0.5, 1.0}));
    CHECK(back["names"] == nlohmann::json({"a", "b"}));
    CHECK(back["nested"] == R"({"k":"v"})");  // objects are kept as their JSON text
    CHECK(back["neg"] == -5);
    CHECK(io::read_array(file + ":/data") == data);

    // Dataset attributes written by another program.
    const auto other = (dir / "b.h5").string();
    {
      RawFile raw(other);
      Hid ds = raw.dataset("/train", H5T_IEEE_F32LE, {2});
      const float v[2] = {1, 2};
      H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
      Hid scalar(H5Screate(H5S_SCALAR));
      Hid a(H5Acreate2(ds.get(), "scale", H5T_IEEE_F64LE, scalar.get(), H5P_DEFAULT, H5P_DEFAULT));
      const double scale = 2.5;
      H5Awrite(a.get(), H5T_NATIVE_DOUBLE, &scale);
      Hid st(H5Tcopy(H5T_C_S1));
      H5Tset_size(st.get(), 5);
      Hid s(H5Acreate2(ds.get(), "unit", st.get(), scalar.get(), H5P_DEFAULT, H5P_DEFAULT));
      H5Awrite(s.get(), st.get(), "meter");
      const hsize_t three = 3;
      Hid vec(H5Screate_simple(1, &three, nullptr));
      Hid iv(H5Acreate2(ds.get(), "shape", H5T_STD_I16BE, vec.get(), H5P_DEFAULT, H5P_DEFAULT));
      const int16_t sh[3] = {4, -5, 6};
      H5Awrite(iv.get(), H5T_NATIVE_INT16, sh);
    }
    auto reader = io::open_array(other + ":/train");
    const auto ds_attrs = reader->attributes();
    CHECK(ds_attrs["scale"] == 2.5);
    CHECK(ds_attrs["unit"] == "meter");
    CHECK(ds_attrs["shape"] == nlohmann::json({4, -5, 6}));
    CHECK(io::read_hdf5_dataset_attributes(other, "/train") == ds_attrs);
  }

  TEST_CASE("write_arrays puts data, labels and ids in one file under a group") {
    const auto dir = testutil::scratch_dir("h5-write-arrays");
    const auto file = (dir / "batch.h5").string();
    const Array data = patterned(DType::f32, {3, 4});
    const Array labels = patterned(DType::i64, {3});
    io::write_arrays(file, {{"data", data}, {"labels", labels}}, {"x", "y", "z"});
    CHECK(io::list_hdf5_datasets(file) == std::vector<std::string>{"/data", "/ids", "/labels"});
    CHECK(io::read_array(file + ":/labels") == labels);
    CHECK(io::read_strings(file + ":/ids") == std::vector<std::string>{"x", "y", "z"});
    // A dataset path names a group to write into; the rest of the file stays.
    io::write_arrays(file + ":/epoch2", {{"data", data}});
    CHECK(io::list_hdf5_datasets(file).size() == 4);
    CHECK(io::read_array(file + ":/epoch2/data") == data);
    // Writing without a path replaces the file.
    io::write_arrays(file, {{"data", labels}});
    CHECK(io::list_hdf5_datasets(file) == std::vector<std::string>{"/data"});
    CHECK_THROWS_AS(io::write_arrays(file, {{"../x", data}}), UsageError);
    const auto all = io::read_all_arrays(file);
    REQUIRE(all.size() == 1);
    CHECK(all[0].name == "data");
    CHECK(all[0].array == labels);
  }

  TEST_CASE("missing datasets and groups are errors naming the path and what exists") {
    const auto dir = testutil::scratch_dir("h5-missing");
    const auto file = (dir / "m.h5").string();
    io::write_arrays(file, {{"train", patterned(DType::f32, {2, 2})}, {"test", patterned(DType::f32, {1, 2})}});
    std::string msg = error_of([&] { io::open_array(file + ":/nope"); });
    CHECK(msg == fmt::format("{}: no dataset \"/nope\" (have: /test, /train)", file));
    msg = error_of([&] { io::open_array(file + ":/no/such/group/x"); });
    CHECK(msg == fmt::format("{}: no dataset \"/no/such/group/x\" (have: /test, /train)", file));
    io::write_array(file + ":/g/inner", patterned(DType::f32, {1}));
    msg = error_of([&] { io::open_array(file + ":/g"); });
    CHECK(contains(msg, "no dataset \"/g\""));  // a group is not a dataset
    msg = error_of([&] { io::open_array(file); });
    CHECK(contains(msg, "holds 3 datasets; name one as"));
    CHECK(contains(msg, "/g/inner"));
    msg = error_of([&] { io::read_strings(file + ":/missing"); });
    CHECK(contains(msg, "no dataset \"/missing\""));
    msg = error_of([&] { io::open_array((dir / "absent.h5").string() + ":/x"); });
    CHECK(msg == (dir / "absent.h5").string() + ": no such file");
    // A file with one dataset needs no path.
    const auto one = (dir / "one.h5").string();
    io::write_array(one, patterned(DType::i8, {3}));
    CHECK(io::read_array(one) == patterned(DType::i8, {3}));
    RawFile((dir / "empty.h5").string());
    CHECK(contains(error_of([&] { io::open_array((dir / "empty.h5").string()); }), "holds no datasets"));
  }

  TEST_CASE("a non-HDF5 file is refused; so is a bad dataset path on write") {
    const auto dir = testutil::scratch_dir("h5-bad");
    const auto file = (dir / "fake.h5").string();
    {
      std::ofstream out(file);
      out << "this is not HDF5\n";
    }
    CHECK(error_of([&] { io::open_array(file + ":/x"); }) == file + ": not an HDF5 file");
    CHECK(error_of([&] { io::read_array(file); }) == file + ": not an HDF5 file");
    // Writing into it (keeping its contents) is refused and leaves it untouched.
    CHECK(error_of([&] { io::write_array(file + ":/x", patterned(DType::f32, {1})); }) == file + ": not an HDF5 file");
    CHECK(other_files(dir, {"fake.h5"}).empty());
    const auto good = (dir / "good.h5").string();
    io::write_array(good + ":/a", patterned(DType::f32, {2}));
    CHECK(contains(error_of([&] { io::write_array(good + ":/a/", patterned(DType::f32, {1})); }),
                   "dataset path must look like"));
    io::write_array(good + ":/g/x", patterned(DType::f32, {2}));
    CHECK(contains(error_of([&] { io::write_array(good + ":/g", patterned(DType::f32, {1})); }),
                   "exists and is not a dataset"));
    CHECK(other_files(dir, {"fake.h5", "good.h5"}).empty());
    CHECK(io::read_array(good + ":/a") == patterned(DType::f32, {2}));
  }

  TEST_CASE("compound and other exotic dataset types are refused naming the type") {
    const auto dir = testutil::scratch_dir("h5-exotic");
    const auto file = (dir / "c.h5").string();
    {
      RawFile raw(file);
      Hid t(H5Tcreate(H5T_COMPOUND, 8));
      H5Tinsert(t.get(), "a", 0, H5T_NATIVE_INT32);
      H5Tinsert(t.get(), "b", 4, H5T_NATIVE_FLOAT);
      raw.dataset("/rec", t.get(), {2});
      raw.dataset("/i3", H5T_STD_I8LE, {2});
    }
    CHECK(error_of([&] { io::open_array(file + ":/rec"); }) ==
          file + ":/rec: unsupported HDF5 type (compound records)");
    CHECK(io::read_array(file + ":/i3").dtype() == DType::i8);
  }

  TEST_CASE("an ann-benchmarks layout lists its datasets and its distance attribute") {
    const auto dir = testutil::scratch_dir("h5-ann");
    const auto file = (dir / "ann.h5").string();
    io::write_arrays(file,
                     {{"train", patterned(DType::f32, {10, 4})},
                      {"test", patterned(DType::f32, {2, 4})},
                      {"neighbors", patterned(DType::i32, {2, 3})},
                      {"distances", patterned(DType::f32, {2, 3})}},
                     {}, {{"distance", "euclidean"}});
    CHECK(io::list_hdf5_datasets(file) == std::vector<std::string>{"/distances", "/neighbors", "/test", "/train"});
    CHECK(io::read_hdf5_file_attributes(file)["distance"] == "euclidean");
  }
  TEST_CASE("array specs: FILE.h5:/path, FILE.h5:path, plain files and the magic bytes") {
    auto loc = io::ArrayLocation::parse("d/data.h5:/g/train");
    CHECK(loc.file == "d/data.h5");
    CHECK(loc.dataset == "/g/train");
    CHECK(loc.is_hdf5);
    CHECK(loc.to_string() == "d/data.h5:/g/train");
    loc = io::ArrayLocation::parse("data.HDF5:train");
    CHECK(loc.file == "data.HDF5");
    CHECK(loc.dataset == "/train");
    loc = io::ArrayLocation::parse("x.npy");
    CHECK(!loc.is_hdf5);
    CHECK(loc.dataset.empty());
    loc = io::ArrayLocation::parse("x.h5");
    CHECK(loc.is_hdf5);
    CHECK(loc.dataset.empty());
    CHECK(contains(error_of([] { io::ArrayLocation::parse("x.npy:/a"); }), "dataset paths are only for HDF5 files"));
    CHECK(contains(error_of([] { io::ArrayLocation::parse(":/a"); }), "missing file name"));
    CHECK(contains(error_of([] { io::ArrayLocation::parse("x.csv"); }), "unknown array file format"));
    CHECK_THROWS_AS(io::ArrayLocation::parse(""), UsageError);
    // No known extension: the magic bytes decide.
    const auto dir = testutil::scratch_dir("h5-sniff");
    io::write_array((dir / "a.h5").string(), patterned(DType::i8, {2}));
    std::filesystem::rename(dir / "a.h5", dir / "weights.bin");
    CHECK(io::ArrayLocation::parse((dir / "weights.bin").string()).is_hdf5);
    CHECK(io::read_array((dir / "weights.bin").string()) == patterned(DType::i8, {2}));
  }

  TEST_CASE("nested array names (checkpoint groups) round-trip through HDF5 and NPY") {
    const auto dir = testutil::scratch_dir("h5-nested");
    const auto src = (dir / "model.h5").string();
    const Array w = patterned(DType::f32, {3, 3});
    const Array b = patterned(DType::f64, {3});
    io::write_arrays(src, {{"encoder/layer1/weight", w}, {"encoder/layer1/bias", b}});
    auto all = io::read_all_arrays(src);
    REQUIRE(all.size() == 2);
    CHECK(all[0].name == "encoder/layer1/bias");
    CHECK(all[1].name == "encoder/layer1/weight");
    const auto copy = (dir / "copy.h5").string();
    io::write_arrays(copy, all);
    CHECK(io::read_array(copy + ":/encoder/layer1/weight") == w);
    io::write_arrays((dir / "flat.npy").string(), all);
    CHECK(io::read_array((dir / "flat.npy").string()) == b);
    CHECK(io::read_array((dir / "flat.encoder.layer1.weight.npy").string()) == w);
    for (const char* bad : {"", "/abs", "a/", "a//b", "a/../b", "."}) {
      CAPTURE(bad);
      CHECK_THROWS_AS(io::write_arrays(copy, {{bad, w}}), UsageError);
    }
  }

  TEST_CASE("a dataset using a filter this libhdf5 lacks is refused up front, naming it") {
    const auto dir = testutil::scratch_dir("h5-filter");
    const auto file = (dir / "lzf.h5").string();
    {
      RawFile raw(file);
      Hid dcpl(H5Pcreate(H5P_DATASET_CREATE));
      const hsize_t chunk[1] = {4};
      H5Pset_chunk(dcpl.get(), 1, chunk);
      // 32000 is h5py's LZF; registered as optional so the write itself succeeds.
      REQUIRE(H5Pset_filter(dcpl.get(), 32000, H5Z_FLAG_OPTIONAL, 0, nullptr) >= 0);
      raw.dataset("/x", H5T_STD_I32LE, {8}, dcpl.get());
    }
    const std::string msg = error_of([&] { io::open_array(file + ":/x"); });
    CHECK(msg.find(file + ":/x: compressed with HDF5 filter 32000") == 0);
  }

  TEST_CASE("a contiguous dataset whose stored bytes are fewer than its shape needs is refused") {
    // Made by writing a small dataset, then patching its dataspace dimension in the file
    // (the header lies; the data is short).
    const auto dir = testutil::scratch_dir("h5-lying");
    const auto file = (dir / "lie.h5").string();
    {
      RawFile raw(file);
      Hid ds = raw.dataset("/x", H5T_STD_I32LE, {16});
      const std::vector<int32_t> v(16, 7);
      H5Dwrite(ds.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    }
    std::string bytes;
    {
      std::ifstream in(file, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    // The dataspace message stores the dimension 16 as a little-endian 8-byte integer twice
    // (size and max size); patch both to 2^40.
    const std::string sixteen("\x10\0\0\0\0\0\0\0", 8);
    const std::string huge("\0\0\0\0\0\x01\0\0", 8);
    int patched = 0;
    for (size_t pos = bytes.find(sixteen + sixteen); pos != std::string::npos && patched == 0;
         pos = bytes.find(sixteen + sixteen, pos + 1)) {
      bytes.replace(pos, 16, huge + huge);
      ++patched;
    }
    REQUIRE(patched == 1);
    {
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out << bytes;
    }
    const std::string msg = error_of([&] { io::read_array(file + ":/x"); });
    CHECK(msg.find(file + ":/x: corrupt: shape 1099511627776 needs 4398046511104 bytes, the file holds 64") == 0);
  }

  TEST_CASE("Hdf5BlockWriter writes blocks by hyperslab with write_hdf5's layout, or nothing") {
    const auto dir = testutil::scratch_dir("h5-blocks");
    const auto file = (dir / "out.h5").string();
    const Array a = testutil::random_f32(5000, 64, 12);  // chunked + gzip, as write_array does
    const Array labels = patterned(DType::i64, {5000});
    std::vector<std::string> ids;
    for (int i = 0; i < 5000; ++i) {
      ids.push_back(fmt::format("id-{}", i));
    }
    {
      io::Hdf5BlockWriter w(file,
                            {{"/g/data", DType::f32, {64}, false},
                             {"/g/labels", DType::i64, {}, false},
                             {"/g/ids", DType::f32, {}, true}},
                            5000, false);
      for (int64_t first = 0; first < 5000; first += 1500) {
        const int64_t n = std::min<int64_t>(1500, 5000 - first);
        w.append(0, a.slice_rows(first, n));
        w.append(1, labels.slice_rows(first, n));
        w.append_strings(2, {ids.begin() + first, ids.begin() + first + n});
      }
      w.finish();
      w.commit();
    }
    CHECK(io::read_array(file + ":/g/data") == a);
    CHECK(io::read_array(file + ":/g/labels") == labels);
    CHECK(io::read_strings(file + ":/g/ids") == ids);
    {
      Hid f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
      Hid ds(H5Dopen2(f.get(), "/g/data", H5P_DEFAULT));
      Hid dcpl(H5Dget_create_plist(ds.get()));
      CHECK(H5Pget_layout(dcpl.get()) == H5D_CHUNKED);
      hsize_t chunk[2] = {};
      CHECK(H5Pget_chunk(dcpl.get(), 2, chunk) == 2);
      CHECK(chunk[0] == (size_t{1} << 20) / (64 * 4));
    }
    // Fewer or more rows than promised: RetryableError, and no file appears.
    const auto other = (dir / "short.h5").string();
    {
      io::Hdf5BlockWriter w(other, {{"/data", DType::f32, {64}, false}}, 10, false);
      w.append(0, a.slice_rows(0, 9));
      CHECK_THROWS_AS(w.finish(), RetryableError);
    }
    {
      io::Hdf5BlockWriter w(other, {{"/data", DType::f32, {64}, false}}, 10, false);
      w.append(0, a.slice_rows(0, 8));
      CHECK_THROWS_AS(w.append(0, a.slice_rows(0, 3)), RetryableError);
    }
    CHECK_FALSE(std::filesystem::exists(other));
    CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 1);
  }
}
