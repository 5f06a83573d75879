// SPDX-License-Identifier: MIT
// Reading HDF5 datasets in row blocks (hyperslabs), string datasets and attributes.
#include "src/io/hdf5.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "src/errors.hpp"
#include "src/io/hdf5handle.hpp"
#include "src/io/hdf5module.hpp"

namespace vstash::io {

namespace hdf5 {

void quiet_errors() {
  static std::once_flag once;
  std::call_once(once, [] {
    // No library shutdown at exit: after a failed write (disk full, file too large) HDF5's
    // atexit handler retries the flush on the dead file id and crashes. Every handle is
    // closed by its RAII owner before then, so nothing is lost by skipping it.
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

std::string error_detail() {
  std::string detail;
  auto walk = [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
    if (n == 0 && e->desc != nullptr) {
      *static_cast<std::string*>(data) = e->desc;
    }
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk, &detail);
  H5Eclear2(H5E_DEFAULT);
  std::replace(detail.begin(), detail.end(), '\n', ' ');
  if (!detail.empty()) {
    detail[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(detail[0])));
  }
  return detail.empty() ? "unknown HDF5 error" : detail;
}

Hid check(hid_t id, const std::string& context, const char* what) {
  if (id < 0) {
    throw Error(fmt::format("{}: {}: {}", context, what, error_detail()));
  }
  return Hid(id);
}

void check(herr_t status, const std::string& context, const char* what) {
  if (status < 0) {
    throw Error(fmt::format("{}: {}: {}", context, what, error_detail()));
  }
}

void require_hdf5_file(const std::string& file) {
  quiet_errors();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    throw UsageError(fmt::format("{}: no such file", file));
  }
  if (H5Fis_hdf5(file.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw UsageError(fmt::format("{}: not an HDF5 file", file));
  }
}

bool object_exists(hid_t file, const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return false;
  }
  if (path == "/") {
    return true;
  }
  // H5Lexists fails (rather than answering false) when a parent is missing: check each prefix.
  for (size_t pos = path.find('/', 1);; pos = path.find('/', pos + 1)) {
    const std::string prefix = path.substr(0, pos);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (pos == std::string::npos) {
      break;
    }
  }
  H5O_info_t info;
  if (H5Oget_info_by_name2(file, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
    H5Eclear2(H5E_DEFAULT);  // a dangling soft link
    return false;
  }
  return true;
}

bool dataset_exists(hid_t file, const std::string& path) {
  if (!object_exists(file, path)) {
    return false;
  }
  H5O_info_t info;
  return H5Oget_info_by_name2(file, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 &&
         info.type == H5O_TYPE_DATASET;
}

}  // namespace hdf5

namespace {

using hdf5::check;
using hdf5::Hid;

std::string where(const std::string& file, const std::string& dataset) {
  return dataset.empty() ? file : fmt::format("{}:{}", file, dataset);
}

Hid open_file(const std::string& file) {
  hdf5::require_hdf5_file(file);
  return check(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), file, "cannot open");
}

std::vector<std::string> list_datasets(hid_t file, const std::string& name) {
  std::vector<std::string> out;
  auto visit = [](hid_t group, const char* path, const H5L_info_t* info, void* data) -> herr_t {
    if (info->type != H5L_TYPE_HARD) {
      return 0;
    }
    H5O_info_t oinfo;
    if (H5Oget_info_by_name2(group, path, &oinfo, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 && oinfo.type == H5O_TYPE_DATASET) {
      static_cast<std::vector<std::string>*>(data)->push_back(std::string("/") + path);
    }
    return 0;
  };
  check(H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, visit, &out), name, "cannot list datasets");
  return out;
}

std::string have_list(const std::vector<std::string>& names) {
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
}

// Resolves "" to the file's only dataset and checks that the path names a dataset.
std::string resolve_dataset(hid_t file, const std::string& name, const std::string& dataset) {
  if (dataset.empty()) {
    auto all = list_datasets(file, name);
    if (all.size() == 1) {
      return all[0];
    }
    if (all.empty()) {
      throw UsageError(fmt::format("{}: holds no datasets", name));
    }
    throw UsageError(fmt::format("{}: holds {} datasets; name one as {}:/DATASET (have: {})", name, all.size(), name,
                                 have_list(all)));
  }
  if (!hdf5::dataset_exists(file, dataset)) {
    throw UsageError(
        fmt::format("{}: no dataset \"{}\" (have: {})", name, dataset, have_list(list_datasets(file, name))));
  }
  return dataset;
}

enum class ElemKind { numeric, vlen_string, fixed_string, unsupported };

struct ElemType {
  ElemKind kind = ElemKind::unsupported;
  DType dtype = DType::f32;
  bool swap = false;
  Hid mem;                  // memory type for H5Dread/H5Aread
  std::string unsupported;  // what it is, for messages
};

bool is_bool_enum(hid_t t) {
  if (H5Tget_nmembers(t) != 2 || H5Tget_size(t) != 1) {
    return false;
  }
  bool ok = true;
  for (unsigned i = 0; i < 2; ++i) {
    char* name = H5Tget_member_name(t, i);
    if (name == nullptr) {
      return false;
    }
    int8_t value = -1;
    H5Tget_member_value(t, i, &value);
    ok = ok && ((std::strcmp(name, "FALSE") == 0 && value == 0) || (std::strcmp(name, "TRUE") == 0 && value == 1));
    H5free_memory(name);
  }
  return ok;
}

// Standard layouts are read without conversion and byte-swapped here when big-endian, so
// values survive bit for bit (NaN payloads included); anything else converts to native.
ElemType classify(hid_t ftype, const std::string& name) {
  ElemType e;
  const H5T_class_t cls = H5Tget_class(ftype);
  const size_t size = H5Tget_size(ftype);
  const bool big = H5Tget_order(ftype) == H5T_ORDER_BE;
  if (cls == H5T_INTEGER || (cls == H5T_ENUM && is_bool_enum(ftype))) {
    const bool is_signed = cls == H5T_INTEGER && H5Tget_sign(ftype) == H5T_SGN_2;
    static const DType k_signed[] = {DType::i8,  DType::i16, DType::f32, DType::i32,
                                     DType::f32, DType::f32, DType::f32, DType::i64};
    static const DType k_unsigned[] = {DType::u8,  DType::u16, DType::f32, DType::u32,
                                       DType::f32, DType::f32, DType::f32, DType::u64};
    if (size != 1 && size != 2 && size != 4 && size != 8) {
      e.unsupported = fmt::format("{}-byte integers", size);
      return e;
    }
    e.kind = ElemKind::numeric;
    e.dtype = cls == H5T_ENUM ? DType::b1 : (is_signed ? k_signed : k_unsigned)[size - 1];
    const bool standard = H5Tget_precision(ftype) == size * 8 && H5Tget_offset(ftype) == 0;
    if (standard || cls == H5T_ENUM) {
      e.mem = check(H5Tcopy(ftype), name, "cannot copy type");
      e.swap = big && size > 1;
    } else {
      static const hid_t* const k_native_s[] = {
          &H5T_NATIVE_INT8_g, &H5T_NATIVE_INT16_g, nullptr, &H5T_NATIVE_INT32_g, nullptr, nullptr, nullptr,
          &H5T_NATIVE_INT64_g};
      static const hid_t* const k_native_u[] = {
          &H5T_NATIVE_UINT8_g, &H5T_NATIVE_UINT16_g, nullptr, &H5T_NATIVE_UINT32_g, nullptr, nullptr, nullptr,
          &H5T_NATIVE_UINT64_g};
      e.mem = check(H5Tcopy(*(is_signed ? k_native_s : k_native_u)[size - 1]), name, "cannot copy type");
    }
    return e;
  }
  if (cls == H5T_FLOAT) {
    size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    H5Tget_fields(ftype, &spos, &epos, &esize, &mpos, &msize);
    const size_t ebias = H5Tget_ebias(ftype);
    const bool ieee =
        (size == 2 && spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 && ebias == 15) ||
        (size == 4 && spos == 31 && epos == 23 && esize == 8 && mpos == 0 && msize == 23 && ebias == 127) ||
        (size == 8 && spos == 63 && epos == 52 && esize == 11 && mpos == 0 && msize == 52 && ebias == 1023);
    const bool standard = ieee && H5Tget_offset(ftype) == 0 && H5Tget_precision(ftype) == size * 8;
    if (standard) {
      e.kind = ElemKind::numeric;
      e.dtype = size == 2 ? DType::f16 : size == 4 ? DType::f32 : DType::f64;
      e.mem = check(H5Tcopy(ftype), name, "cannot copy type");
      e.swap = big;
    } else if (size == 4 || size == 8) {
      e.kind = ElemKind::numeric;
      e.dtype = size == 4 ? DType::f32 : DType::f64;
      e.mem = check(H5Tcopy(size == 4 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE), name, "cannot copy type");
    } else {
      e.unsupported = fmt::format("{}-byte non-IEEE floats", size);
    }
    return e;
  }
  if (cls == H5T_STRING) {
    e.mem = check(H5Tcopy(ftype), name, "cannot copy type");
    e.kind = H5Tis_variable_str(ftype) > 0 ? ElemKind::vlen_string : ElemKind::fixed_string;
    return e;
  }
  static const std::pair<H5T_class_t, const char*> k_names[] = {
      {H5T_COMPOUND, "compound records"}, {H5T_ENUM, "enums"},
      {H5T_ARRAY, "array elements"},      {H5T_VLEN, "variable-length sequences"},
      {H5T_REFERENCE, "references"},      {H5T_OPAQUE, "opaque data"},
      {H5T_BITFIELD, "bitfields"},        {H5T_TIME, "times"}};
  e.unsupported = "an unknown type class";
  for (const auto& [c, text] : k_names) {
    if (c == cls) {
      e.unsupported = text;
    }
  }
  return e;
}

void byteswap_elements(std::byte* data, size_t count, size_t itemsize) {
  for (size_t i = 0; i < count; ++i) {
    std::reverse(data + i * itemsize, data + (i + 1) * itemsize);
  }
}

// Strings of a dataset or attribute (any shape, flattened), vlen or fixed-length.
std::vector<std::string> read_string_values(hid_t obj, hid_t space, const ElemType& e, bool is_attr,
                                            const std::string& name) {
  const hssize_t npoints = H5Sget_simple_extent_npoints(space);
  if (npoints < 0) {
    throw Error(fmt::format("{}: cannot get the number of strings: {}", name, hdf5::error_detail()));
  }
  const auto n = static_cast<size_t>(npoints);
  std::vector<std::string> out;
  out.reserve(n);
  if (n == 0) {
    return out;
  }
  if (e.kind == ElemKind::vlen_string) {
    std::vector<char*> ptrs(n, nullptr);
    const herr_t status = is_attr ? H5Aread(obj, e.mem.get(), ptrs.data())
                                  : H5Dread(obj, e.mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data());
    if (status < 0) {
      throw Error(fmt::format("{}: cannot read strings: {}", name, hdf5::error_detail()));
    }
    for (char* p : ptrs) {
      out.emplace_back(p == nullptr ? "" : p);
    }
    H5Dvlen_reclaim(e.mem.get(), space, H5P_DEFAULT, ptrs.data());
    return out;
  }
  const size_t width = H5Tget_size(e.mem.get());
  const H5T_str_t pad = H5Tget_strpad(e.mem.get());
  std::vector<char> buf(n * width);
  const herr_t status = is_attr ? H5Aread(obj, e.mem.get(), buf.data())
                                : H5Dread(obj, e.mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
  if (status < 0) {
    throw Error(fmt::format("{}: cannot read strings: {}", name, hdf5::error_detail()));
  }
  for (size_t i = 0; i < n; ++i) {
    std::string s(buf.data() + i * width, width);
    if (pad == H5T_STR_NULLTERM) {
      s.resize(std::strlen(s.c_str()));
    }
    const char filler = pad == H5T_STR_SPACEPAD ? ' ' : '\0';
    while (!s.empty() && s.back() == filler) {
      s.pop_back();
    }
    out.push_back(std::move(s));
  }
  return out;
}

constexpr hssize_t k_max_attribute_elements = 1024;

nlohmann::json attribute_value(hid_t attr, const std::string& name) {
  Hid ftype = check(H5Aget_type(attr), name, "cannot get attribute type");
  Hid space = check(H5Aget_space(attr), name, "cannot get attribute space");
  const int ndims = H5Sget_simple_extent_ndims(space.get());
  const hssize_t npoints = H5Sget_simple_extent_npoints(space.get());
  if (ndims < 0 || npoints < 0 || npoints > k_max_attribute_elements ||
      H5Sget_simple_extent_type(space.get()) == H5S_NULL) {
    return nullptr;
  }
  const ElemType e = classify(ftype.get(), name);
  nlohmann::json values = nlohmann::json::array();
  if (e.kind == ElemKind::vlen_string || e.kind == ElemKind::fixed_string) {
    for (auto& s : read_string_values(attr, space.get(), e, true, name)) {
      values.push_back(std::move(s));
    }
  } else if (e.kind == ElemKind::numeric) {
    const auto n = static_cast<size_t>(npoints);
    if (e.dtype == DType::b1) {
      std::vector<uint8_t> v(n);
      check(H5Aread(attr, e.mem.get(), v.data()), name, "cannot read attribute");
      for (auto x : v) {
        values.push_back(x != 0);
      }
    } else if (dtype_is_float(e.dtype)) {
      std::vector<double> v(n);
      check(H5Aread(attr, H5T_NATIVE_DOUBLE, v.data()), name, "cannot read attribute");
      for (auto x : v) {
        values.push_back(x);
      }
    } else if (H5Tget_sign(ftype.get()) == H5T_SGN_2) {
      std::vector<int64_t> v(n);
      check(H5Aread(attr, H5T_NATIVE_INT64, v.data()), name, "cannot read attribute");
      for (auto x : v) {
        values.push_back(x);
      }
    } else {
      std::vector<uint64_t> v(n);
      check(H5Aread(attr, H5T_NATIVE_UINT64, v.data()), name, "cannot read attribute");
      for (auto x : v) {
        values.push_back(x);
      }
    }
  } else {
    return nullptr;  // compound and other exotic attributes are left out
  }
  if (ndims == 0 && values.size() == 1) {
    return values[0];
  }
  return values;
}

// Strings, numeric scalars and small numeric arrays (flattened); other attributes are skipped.
nlohmann::json attributes_to_json(hid_t obj, const std::string& name) {
  struct Walk {
    const std::string* name;
    nlohmann::json out = nlohmann::json::object();
    std::string error;
  } walk{&name, nlohmann::json::object(), {}};
  auto visit = [](hid_t location, const char* attr_name, const H5A_info_t*, void* data) -> herr_t {
    auto* w = static_cast<Walk*>(data);
    try {
      Hid attr = check(H5Aopen(location, attr_name, H5P_DEFAULT), *w->name, "cannot open attribute");
      auto value = attribute_value(attr.get(), fmt::format("{} attribute \"{}\"", *w->name, attr_name));
      if (!value.is_null()) {
        w->out[attr_name] = std::move(value);
      }
    } catch (const std::exception& ex) {
      w->error = ex.what();
      return -1;
    }
    return 0;
  };
  hsize_t idx = 0;
  if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, visit, &walk) < 0) {
    if (!walk.error.empty()) {
      throw Error(walk.error);
    }
    throw Error(fmt::format("{}: cannot read attributes: {}", name, hdf5::error_detail()));
  }
  return walk.out;
}

class Hdf5Reader final : public ArrayReader {
 public:
  Hdf5Reader(std::string name, Hid file, Hid dataset, ElemType elem, Shape shape)
      : m_name(std::move(name)),
        m_file(std::move(file)),
        m_dataset(std::move(dataset)),
        m_elem(std::move(elem)),
        m_shape(std::move(shape)) {}

  DType dtype() const override { return m_elem.dtype; }
  const Shape& shape() const override { return m_shape; }
  nlohmann::json attributes() const override { return attributes_to_json(m_dataset.get(), m_name); }

  Array read_rows(int64_t first, int64_t max_rows) override {
    const int64_t total = rows();
    if (first < 0 || first > total || max_rows < 0) {
      throw Error(fmt::format("{}: rows [{}, +{}) out of range (dataset has {})", m_name, first, max_rows, total));
    }
    const int64_t n = std::min(max_rows, total - first);
    if (m_shape.empty()) {
      Array out(dtype(), n == 0 ? Shape{0} : Shape{});
      if (n > 0) {
        check(H5Dread(m_dataset.get(), m_elem.mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), m_name,
              "cannot read");
        finish(out);
      }
      return out;
    }
    Shape out_shape = m_shape;
    out_shape[0] = n;
    Array out(dtype(), out_shape);
    if (out.nbytes() == 0) {
      return out;
    }
    // A hyperslab of whole rows [first, first+n): only that block is read from disk.
    std::vector<hsize_t> start(m_shape.size(), 0);
    std::vector<hsize_t> count(out_shape.begin(), out_shape.end());
    start[0] = static_cast<hsize_t>(first);
    Hid fspace = check(H5Dget_space(m_dataset.get()), m_name, "cannot get dataspace");
    check(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), m_name,
          "cannot select rows");
    Hid mspace = check(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), m_name,
                       "cannot create dataspace");
    check(H5Dread(m_dataset.get(), m_elem.mem.get(), mspace.get(), fspace.get(), H5P_DEFAULT, out.data()), m_name,
          "cannot read");
    finish(out);
    return out;
  }

 private:
  void finish(Array& out) const {
    if (m_elem.swap) {
      byteswap_elements(out.data(), static_cast<size_t>(out.size()), dtype_size(out.dtype()));
    }
  }

  std::string m_name;
  Hid m_file;  // declared before the dataset so it is closed after it
  Hid m_dataset;
  ElemType m_elem;
  Shape m_shape;
};

struct OpenDataset {
  Hid file;
  Hid dataset;
  Hid space;
  ElemType elem;
  std::string name;  // "x.h5:/train"
};

// A dataset compressed with a filter this libhdf5 lacks (h5py's lzf, blosc plugins) would only
// fail at the first read with "can't read data"; say which filter instead, up front.
void check_filters(hid_t dataset, const std::string& name) {
  Hid dcpl = check(H5Dget_create_plist(dataset), name, "cannot get creation properties");
  const int n = H5Pget_nfilters(dcpl.get());
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0;
    size_t nelmts = 0;
    char filter_name[64] = {};
    const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nelmts, nullptr,
                                           sizeof(filter_name), filter_name, nullptr);
    if (id < 0) {
      throw Error(fmt::format("{}: cannot read filter {}: {}", name, i, hdf5::error_detail()));
    }
    if (H5Zfilter_avail(id) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      throw UsageError(
          fmt::format("{}: compressed with HDF5 filter {} (\"{}\"), which this HDF5 library "
                      "does not have; rewrite it with gzip",
                      name, id, filter_name));
    }
  }
}

OpenDataset open_dataset(const std::string& file, const std::string& dataset) {
  OpenDataset d;
  d.file = open_file(file);
  const std::string path = resolve_dataset(d.file.get(), file, dataset);
  d.name = where(file, path);
  // A 32 MiB chunk cache (the default is 1 MiB) keeps a chunk that straddles two row blocks
  // from being read and inflated twice; memory stays bounded by it plus one block.
  Hid dapl = check(H5Pcreate(H5P_DATASET_ACCESS), d.name, "cannot create property list");
  check(H5Pset_chunk_cache(dapl.get(), 12421, size_t{32} << 20, 1.0), d.name, "cannot set chunk cache");
  d.dataset = check(H5Dopen2(d.file.get(), path.c_str(), dapl.get()), d.name, "cannot open dataset");
  Hid ftype = check(H5Dget_type(d.dataset.get()), d.name, "cannot get type");
  d.elem = classify(ftype.get(), d.name);
  d.space = check(H5Dget_space(d.dataset.get()), d.name, "cannot get dataspace");
  if (H5Sget_simple_extent_type(d.space.get()) == H5S_NULL) {
    throw UsageError(fmt::format("{}: dataset has no dataspace (H5S_NULL)", d.name));
  }
  check_filters(d.dataset.get(), d.name);
  return d;
}

Shape dataset_shape(const OpenDataset& d) {
  const int nd = H5Sget_simple_extent_ndims(d.space.get());
  if (nd < 0) {
    throw Error(fmt::format("{}: cannot get shape: {}", d.name, hdf5::error_detail()));
  }
  std::vector<hsize_t> dims(static_cast<size_t>(nd));
  H5Sget_simple_extent_dims(d.space.get(), dims.data(), nullptr);
  // Never trust a header: the byte count must fit in memory arithmetic, and a contiguous
  // dataset's stored bytes must match it (0 = never written, all fill value, which is legal).
  uint64_t bytes = d.elem.kind == ElemKind::numeric ? dtype_size(d.elem.dtype) : sizeof(char*);
  for (hsize_t dim : dims) {
    if (dim > static_cast<hsize_t>(INT64_MAX) || __builtin_mul_overflow(bytes, dim, &bytes) ||
        bytes > (uint64_t{1} << 62)) {
      throw UsageError(fmt::format("{}: corrupt: shape {} is too large", d.name, fmt::join(dims, " x ")));
    }
  }
  Hid dcpl = check(H5Dget_create_plist(d.dataset.get()), d.name, "cannot get creation properties");
  if (d.elem.kind == ElemKind::numeric && H5Pget_layout(dcpl.get()) == H5D_CONTIGUOUS &&
      H5Pget_external_count(dcpl.get()) == 0) {
    const hsize_t stored = H5Dget_storage_size(d.dataset.get());
    if (stored != 0 && stored < bytes) {
      throw UsageError(fmt::format("{}: corrupt: shape {} needs {} bytes, the file holds {}", d.name,
                                   fmt::join(dims, " x "), bytes, stored));
    }
  }
  return Shape(dims.begin(), dims.end());
}

}  // namespace

std::unique_ptr<ArrayReader> hdf5::open_reader(const std::string& file, const std::string& dataset) {
  OpenDataset d = open_dataset(file, dataset);
  if (d.elem.kind == ElemKind::vlen_string || d.elem.kind == ElemKind::fixed_string) {
    throw UsageError(fmt::format("{}: holds strings, not numbers; use it as ids", d.name));
  }
  if (d.elem.kind == ElemKind::unsupported) {
    throw UsageError(fmt::format("{}: unsupported HDF5 type ({})", d.name, d.elem.unsupported));
  }
  Shape shape = dataset_shape(d);
  return std::make_unique<Hdf5Reader>(d.name, std::move(d.file), std::move(d.dataset), std::move(d.elem),
                                      std::move(shape));
}

std::vector<std::string> hdf5::read_strings(const std::string& file, const std::string& dataset) {
  OpenDataset d = open_dataset(file, dataset);
  if (d.elem.kind != ElemKind::vlen_string && d.elem.kind != ElemKind::fixed_string) {
    throw UsageError(
        fmt::format("{}: holds {}, not strings", d.name,
                    d.elem.kind == ElemKind::numeric ? std::string(dtype_name(d.elem.dtype)) : d.elem.unsupported));
  }
  const Shape shape = dataset_shape(d);
  if (shape.size() > 1) {
    throw UsageError(
        fmt::format("{}: expected a 1-d dataset of strings, got shape {}", d.name, shape_to_string(shape)));
  }
  return read_string_values(d.dataset.get(), d.space.get(), d.elem, false, d.name);
}

bool hdf5::holds_strings(const std::string& file, const std::string& dataset) {
  OpenDataset d = open_dataset(file, dataset);
  return d.elem.kind == ElemKind::vlen_string || d.elem.kind == ElemKind::fixed_string;
}

std::vector<std::string> hdf5::dataset_paths(const std::string& file) {
  Hid f = open_file(file);
  return list_datasets(f.get(), file);
}

nlohmann::json hdf5::file_attributes(const std::string& file) {
  Hid f = open_file(file);
  Hid root = check(H5Gopen2(f.get(), "/", H5P_DEFAULT), file, "cannot open root group");
  return attributes_to_json(root.get(), file);
}

nlohmann::json hdf5::dataset_attributes(const std::string& file, const std::string& dataset) {
  OpenDataset d = open_dataset(file, dataset);
  return attributes_to_json(d.dataset.get(), d.name);
}

}  // namespace vstash::io
