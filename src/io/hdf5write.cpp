// SPDX-License-Identifier: MIT
// Writing HDF5 datasets and root attributes atomically (temp copy, modify, rename).
#include <fmt/format.h>
#include <algorithm>
#include <filesystem>

#include "src/errors.hpp"
#include "src/io/atomicfile.hpp"
#include "src/io/hdf5.hpp"
#include "src/io/hdf5handle.hpp"
#include "src/io/hdf5module.hpp"

namespace vstash::io {

namespace {

using hdf5::check;
using hdf5::Hid;

constexpr size_t k_compress_above = size_t{1} << 20;  // bytes
constexpr size_t k_chunk_bytes = size_t{1} << 20;
constexpr int k_gzip_level = 4;

// h5py's conventions, so numpy users get their dtypes back: bool is an int8 enum
// FALSE/TRUE and float16 an IEEE half type.
Hid file_type(DType dtype, const std::string& name) {
  switch (dtype) {
    case DType::f16: {
      Hid t = check(H5Tcopy(H5T_IEEE_F32LE), name, "cannot create type");
      check(H5Tset_fields(t.get(), 15, 10, 5, 0, 10), name, "cannot create half type");
      check(H5Tset_size(t.get(), 2), name, "cannot create half type");
      check(H5Tset_ebias(t.get(), 15), name, "cannot create half type");
      return t;
    }
    case DType::b1: {
      Hid t = check(H5Tenum_create(H5T_NATIVE_INT8), name, "cannot create bool type");
      const int8_t f = 0;
      const int8_t t_value = 1;
      check(H5Tenum_insert(t.get(), "FALSE", &f), name, "cannot create bool type");
      check(H5Tenum_insert(t.get(), "TRUE", &t_value), name, "cannot create bool type");
      return t;
    }
    case DType::f32:
      return check(H5Tcopy(H5T_IEEE_F32LE), name, "cannot create type");
    case DType::f64:
      return check(H5Tcopy(H5T_IEEE_F64LE), name, "cannot create type");
    case DType::i8:
      return check(H5Tcopy(H5T_STD_I8LE), name, "cannot create type");
    case DType::i16:
      return check(H5Tcopy(H5T_STD_I16LE), name, "cannot create type");
    case DType::i32:
      return check(H5Tcopy(H5T_STD_I32LE), name, "cannot create type");
    case DType::i64:
      return check(H5Tcopy(H5T_STD_I64LE), name, "cannot create type");
    case DType::u8:
      return check(H5Tcopy(H5T_STD_U8LE), name, "cannot create type");
    case DType::u16:
      return check(H5Tcopy(H5T_STD_U16LE), name, "cannot create type");
    case DType::u32:
      return check(H5Tcopy(H5T_STD_U32LE), name, "cannot create type");
    case DType::u64:
      return check(H5Tcopy(H5T_STD_U64LE), name, "cannot create type");
  }
  throw Error(fmt::format("{}: unknown dtype", name));
}

Hid utf8_string_type(const std::string& name) {
  Hid t = check(H5Tcopy(H5T_C_S1), name, "cannot create string type");
  check(H5Tset_size(t.get(), H5T_VARIABLE), name, "cannot create string type");
  check(H5Tset_cset(t.get(), H5T_CSET_UTF8), name, "cannot create string type");
  return t;
}

Hid simple_space(const std::vector<hsize_t>& dims, const std::string& name) {
  if (dims.empty()) {
    return check(H5Screate(H5S_SCALAR), name, "cannot create dataspace");
  }
  return check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), name, "cannot create dataspace");
}

Hid link_properties(const std::string& name) {
  Hid lcpl = check(H5Pcreate(H5P_LINK_CREATE), name, "cannot create property list");
  check(H5Pset_create_intermediate_group(lcpl.get(), 1), name, "cannot set property");
  check(H5Pset_char_encoding(lcpl.get(), H5T_CSET_UTF8), name, "cannot set property");
  return lcpl;
}

// Chunks of whole rows, about k_chunk_bytes each, for arrays over k_compress_above (shape and
// item size of the whole array).
Hid dataset_properties(const Shape& shape, size_t item_size, const std::string& name) {
  Hid dcpl = check(H5Pcreate(H5P_DATASET_CREATE), name, "cannot create property list");
  const size_t row_bytes =
      shape.empty() ? 0 : static_cast<size_t>(shape_product(std::span(shape).subspan(1))) * item_size;
  const size_t nbytes = static_cast<size_t>(shape_product(shape)) * item_size;
  if (shape.empty() || nbytes <= k_compress_above || row_bytes == 0 || row_bytes >= (size_t{1} << 32)) {
    return dcpl;
  }
  std::vector<hsize_t> chunk(shape.begin(), shape.end());
  chunk[0] = std::clamp<hsize_t>(k_chunk_bytes / row_bytes, 1, static_cast<hsize_t>(shape[0]));
  check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), name, "cannot set chunking");
  if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
    check(H5Pset_deflate(dcpl.get(), k_gzip_level), name, "cannot set gzip");
  }
  return dcpl;
}

void write_numeric(hid_t file, const std::string& path, const Array& array, const std::string& name) {
  Hid type = file_type(array.dtype(), name);
  Hid space = simple_space(std::vector<hsize_t>(array.shape().begin(), array.shape().end()), name);
  Hid dcpl = dataset_properties(array.shape(), dtype_size(array.dtype()), name);
  Hid lcpl = link_properties(name);
  Hid ds = check(H5Dcreate2(file, path.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT), name,
                 "cannot create dataset");
  if (array.nbytes() > 0) {
    // Array data is little-endian like the file type: no conversion happens.
    check(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, array.data()), name, "cannot write");
  }
}

void write_strings(hid_t file, const std::string& path, const std::vector<std::string>& strings,
                   const std::string& name) {
  Hid type = utf8_string_type(name);
  Hid space = simple_space({static_cast<hsize_t>(strings.size())}, name);
  Hid lcpl = link_properties(name);
  Hid ds = check(H5Dcreate2(file, path.c_str(), type.get(), space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), name,
                 "cannot create dataset");
  std::vector<const char*> ptrs;
  ptrs.reserve(strings.size());
  for (const auto& s : strings) {
    ptrs.push_back(s.c_str());
  }
  if (!ptrs.empty()) {
    check(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), name, "cannot write");
  }
}

void write_attribute(hid_t obj, const std::string& key, const nlohmann::json& value, const std::string& name) {
  const std::string where = fmt::format("{} attribute \"{}\"", name, key);
  if (H5Aexists(obj, key.c_str()) > 0) {
    check(H5Adelete(obj, key.c_str()), where, "cannot replace");
  }
  auto create = [&](const Hid& type, const std::vector<hsize_t>& dims, const void* data) {
    Hid space = simple_space(dims, where);
    Hid attr =
        check(H5Acreate2(obj, key.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), where, "cannot create");
    check(H5Awrite(attr.get(), type.get(), data), where, "cannot write");
  };
  bool all_numbers = value.is_array() && !value.empty();
  bool all_integers = all_numbers;
  bool all_strings = value.is_array() && !value.empty();
  if (value.is_array()) {
    for (const auto& v : value) {
      all_numbers = all_numbers && v.is_number();
      all_integers =
          all_integers && v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX);
      all_strings = all_strings && v.is_string();
    }
  }
  if (value.is_string()) {
    const char* p = value.get_ref<const std::string&>().c_str();
    create(utf8_string_type(where), {}, &p);
  } else if (value.is_boolean()) {
    const auto b = static_cast<int8_t>(value.get<bool>() ? 1 : 0);
    create(file_type(DType::b1, where), {}, &b);
  } else if (value.is_number_unsigned() && value.get<uint64_t>() > INT64_MAX) {
    const auto v = value.get<uint64_t>();
    create(check(H5Tcopy(H5T_STD_U64LE), where, "cannot create type"), {}, &v);
  } else if (value.is_number_integer()) {
    const auto v = value.get<int64_t>();
    create(check(H5Tcopy(H5T_STD_I64LE), where, "cannot create type"), {}, &v);
  } else if (value.is_number_float()) {
    const auto v = value.get<double>();
    create(check(H5Tcopy(H5T_IEEE_F64LE), where, "cannot create type"), {}, &v);
  } else if (all_integers) {
    const auto v = value.get<std::vector<int64_t>>();
    create(check(H5Tcopy(H5T_STD_I64LE), where, "cannot create type"), {v.size()}, v.data());
  } else if (all_numbers) {
    const auto v = value.get<std::vector<double>>();
    create(check(H5Tcopy(H5T_IEEE_F64LE), where, "cannot create type"), {v.size()}, v.data());
  } else if (all_strings) {
    std::vector<const char*> ptrs;
    for (const auto& v : value) {
      ptrs.push_back(v.get_ref<const std::string&>().c_str());
    }
    create(utf8_string_type(where), {ptrs.size()}, ptrs.data());
  } else {
    // null, objects, empty and mixed arrays: kept as their JSON text.
    const std::string text = value.dump();
    const char* p = text.c_str();
    create(utf8_string_type(where), {}, &p);
  }
}

// The temp file of out, new or a copy of the existing file (keep_existing), open for writing.
Hid open_temp(const std::string& file, const AtomicFile& out, bool keep_existing) {
  std::error_code ec;
  if (keep_existing && std::filesystem::exists(file, ec)) {
    hdf5::require_hdf5_file(file);
    std::filesystem::copy_file(file, out.temp_path(), std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
      throw Error(fmt::format("{}: cannot copy to \"{}\": {}", file, out.temp_path(), ec.message()));
    }
    return check(H5Fopen(out.temp_path().c_str(), H5F_ACC_RDWR, H5P_DEFAULT), file, "cannot open for writing");
  }
  return check(H5Fcreate(out.temp_path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), file, "cannot create");
}

// Checks a dataset path and removes any dataset already there.
void clear_path(hid_t f, const std::string& path, const std::string& name) {
  if (path.size() < 2 || path[0] != '/' || path.back() == '/') {
    throw UsageError(fmt::format("{}: dataset path must look like \"/name\" or \"/group/name\"", name));
  }
  if (hdf5::object_exists(f, path)) {
    if (!hdf5::dataset_exists(f, path)) {
      throw UsageError(fmt::format("{}: exists and is not a dataset", name));
    }
    // The old data's space is not reclaimed; h5repack compacts a file rewritten often.
    check(H5Ldelete(f, path.c_str(), H5P_DEFAULT), name, "cannot replace dataset");
  }
}

}  // namespace

void hdf5::write_datasets(const std::string& file, const std::vector<Hdf5Write>& datasets,
                          const nlohmann::json& root_attributes, bool keep_existing) {
  hdf5::quiet_errors();
  if (!root_attributes.is_null() && !root_attributes.is_object()) {
    throw UsageError(fmt::format("{}: attributes must be a JSON object", file));
  }
  AtomicFile out(file);
  {
    Hid f = open_temp(file, out, keep_existing);
    for (const auto& d : datasets) {
      const std::string name = fmt::format("{}:{}", file, d.dataset);
      clear_path(f.get(), d.dataset, name);
      if (d.array != nullptr) {
        write_numeric(f.get(), d.dataset, *d.array, name);
      } else if (d.strings != nullptr) {
        write_strings(f.get(), d.dataset, *d.strings, name);
      }
    }
    if (root_attributes.is_object() && !root_attributes.empty()) {
      Hid root = check(H5Gopen2(f.get(), "/", H5P_DEFAULT), file, "cannot open root group");
      for (const auto& [key, value] : root_attributes.items()) {
        write_attribute(root.get(), key, value, file);
      }
    }
    check(H5Fclose(f.release()), file, "cannot close");
  }
  out.commit();
}

namespace {

struct BlockState {
  std::string file;
  AtomicFile out;
  Hid f;
  std::vector<Hdf5BlockDataset> specs;
  std::vector<Hid> types;
  std::vector<Hid> sets;
  std::vector<int64_t> written;
  int64_t rows = 0;

  BlockState(const std::string& path) : file(path), out(path) {}

  std::string name(size_t i) const { return fmt::format("{}:{}", file, specs[i].dataset); }

  // The file space with rows [first, first + n) selected, and the memory space of n rows.
  std::pair<Hid, Hid> spaces(size_t i, int64_t n) {
    const std::string where = name(i);
    if (written[i] + n > rows) {
      throw RetryableError(
          fmt::format("{}: the dataset changed while it was written ({} rows when it began, more "
                      "read); run it again",
                      where, rows));
    }
    const Shape& rs = specs[i].row_shape;
    std::vector<hsize_t> start(1 + (specs[i].strings ? 0 : rs.size()), 0);
    std::vector<hsize_t> count(start.size());
    start[0] = static_cast<hsize_t>(written[i]);
    count[0] = static_cast<hsize_t>(n);
    for (size_t k = 1; k < count.size(); ++k) {
      count[k] = static_cast<hsize_t>(rs[k - 1]);
    }
    Hid file_space = check(H5Dget_space(sets[i].get()), where, "cannot get dataspace");
    check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), where,
          "cannot select rows");
    return {std::move(file_space), simple_space(count, where)};
  }
};

class BlockWriter final : public hdf5::BlockSink {
 public:
  BlockWriter(const std::string& file, const std::vector<Hdf5BlockDataset>& datasets, int64_t rows, bool keep_existing);
  void append(size_t i, const Array& rows) override;
  void append_strings(size_t i, const std::vector<std::string>& strings) override;
  void finish() override;
  void commit() override;

 private:
  std::unique_ptr<BlockState> m;
};

BlockWriter::BlockWriter(const std::string& file, const std::vector<Hdf5BlockDataset>& datasets, int64_t rows,
                         bool keep_existing)
    : m(std::make_unique<BlockState>(file)) {
  hdf5::quiet_errors();
  m->f = open_temp(file, m->out, keep_existing);
  m->specs = datasets;
  m->rows = rows;
  for (size_t i = 0; i < datasets.size(); ++i) {
    const auto& d = datasets[i];
    const std::string where = m->name(i);
    clear_path(m->f.get(), d.dataset, where);
    Shape shape{rows};
    if (!d.strings) {
      shape.insert(shape.end(), d.row_shape.begin(), d.row_shape.end());
    }
    Hid type = d.strings ? utf8_string_type(where) : file_type(d.dtype, where);
    Hid space = simple_space(std::vector<hsize_t>(shape.begin(), shape.end()), where);
    Hid dcpl = d.strings ? check(H5Pcreate(H5P_DATASET_CREATE), where, "cannot create property list")
                         : dataset_properties(shape, dtype_size(d.dtype), where);
    Hid lcpl = link_properties(where);
    m->sets.push_back(
        check(H5Dcreate2(m->f.get(), d.dataset.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
              where, "cannot create dataset"));
    m->types.push_back(std::move(type));
    m->written.push_back(0);
  }
}

void BlockWriter::append(size_t i, const Array& rows) {
  const auto& d = m->specs.at(i);
  if (d.strings || rows.dtype() != d.dtype || rows.row_shape() != d.row_shape) {
    throw Error(fmt::format("{}: rows of {} {} appended to a dataset of other rows", m->name(i),
                            dtype_name(rows.dtype()), shape_to_string(rows.row_shape())));
  }
  const int64_t n = rows.rows();
  if (n == 0) {
    return;
  }
  auto [file_space, mem_space] = m->spaces(i, n);
  // Array data is little-endian like the file type: no conversion happens.
  check(H5Dwrite(m->sets[i].get(), m->types[i].get(), mem_space.get(), file_space.get(), H5P_DEFAULT, rows.data()),
        m->name(i), "cannot write");
  m->written[i] += n;
}

void BlockWriter::append_strings(size_t i, const std::vector<std::string>& strings) {
  if (!m->specs.at(i).strings) {
    throw Error(fmt::format("{}: strings appended to a numeric dataset", m->name(i)));
  }
  const auto n = static_cast<int64_t>(strings.size());
  if (n == 0) {
    return;
  }
  std::vector<const char*> ptrs;
  ptrs.reserve(strings.size());
  for (const auto& s : strings) {
    ptrs.push_back(s.c_str());
  }
  auto [file_space, mem_space] = m->spaces(i, n);
  check(H5Dwrite(m->sets[i].get(), m->types[i].get(), mem_space.get(), file_space.get(), H5P_DEFAULT, ptrs.data()),
        m->name(i), "cannot write");
  m->written[i] += n;
}

void BlockWriter::finish() {
  for (size_t i = 0; i < m->sets.size(); ++i) {
    if (m->written[i] != m->rows) {
      throw RetryableError(
          fmt::format("{}: the dataset changed while it was written ({} rows when it began, {} read); "
                      "run it again",
                      m->name(i), m->rows, m->written[i]));
    }
  }
  m->sets.clear();
  m->types.clear();
  check(H5Fclose(m->f.release()), m->file, "cannot close");
}

void BlockWriter::commit() { m->out.commit(); }

}  // namespace

std::unique_ptr<hdf5::BlockSink> hdf5::open_block_writer(const std::string& file,
                                                         const std::vector<Hdf5BlockDataset>& datasets, int64_t rows,
                                                         bool keep_existing) {
  return std::make_unique<BlockWriter>(file, datasets, rows, keep_existing);
}

}  // namespace vstash::io
