// SPDX-License-Identifier: MIT
// NPY reading (versions 1-3, any byte order, C or Fortran order) in row blocks, and writing.
#include "src/io/npy.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>

#include "src/errors.hpp"
#include "src/io/atomicfile.hpp"
#include "src/io/mappedfile.hpp"
#include "src/io/npyheader.hpp"
#include "src/output.hpp"

namespace vstash::io {

// Array data is native order; the writers emit '<', which is only right on little-endian hosts.
static_assert(std::endian::native == std::endian::little, "vstash assumes a little-endian host");

namespace {

class Fd {
 public:
  explicit Fd(int fd) : m_fd(fd) {}
  ~Fd() {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return m_fd; }

 private:
  int m_fd;
};

Fd open_for_reading(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      throw UsageError(fmt::format("{}: no such file", path));
    }
    throw UsageError(fmt::format("{}: cannot open: {}", path, std::strerror(err)));
  }
  return Fd(fd);
}

// Reads exactly size bytes at offset; the header check makes a short read mean the file
// changed under us.
void pread_exact(int fd, const std::string& path, void* dst, size_t size, uint64_t offset) {
  auto* p = static_cast<char*>(dst);
  while (size > 0) {
    const ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw Error(fmt::format("{}: read failed: {}", path, std::strerror(errno)));
    }
    if (n == 0) {
      throw UsageError(fmt::format("{}: truncated: unexpected end of file", path));
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
}

void byteswap_elements(std::byte* data, size_t count, size_t itemsize) {
  if (itemsize < 2) {
    return;
  }
  for (size_t i = 0; i < count; ++i) {
    std::reverse(data + i * itemsize, data + (i + 1) * itemsize);
  }
}

NpyHeader read_header(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw Error(fmt::format("{}: cannot stat: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    // A directory or a pipe has no size to check the header against.
    throw UsageError(fmt::format("{}: not a regular file", path));
  }
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size == 0) {
    throw UsageError(fmt::format("{}: empty file, not an NPY array", path));
  }
  unsigned char pre[12] = {};
  const size_t have = static_cast<size_t>(std::min<uint64_t>(file_size, sizeof(pre)));
  pread_exact(fd, path, pre, have, 0);
  const NpyPreamble preamble = parse_npy_preamble(path, pre, have, file_size);
  // The header length was checked against the file size, so this allocation is bounded.
  std::string text(preamble.header_len, '\0');
  pread_exact(fd, path, text.data(), text.size(), preamble.header_offset);
  NpyHeader h = parse_npy_header(path, text);
  h.data_offset = preamble.header_offset + preamble.header_len;
  check_npy_size(path, h, file_size);
  return h;
}

class NpyReader final : public ArrayReader {
 public:
  NpyReader(std::string path, Fd fd, NpyHeader header)
      : m_path(std::move(path)), m_fd(std::move(fd)), m_h(std::move(header)) {}

  DType dtype() const override { return m_h.descr.dtype; }
  const Shape& shape() const override { return m_h.shape; }

  Array read_rows(int64_t first, int64_t max_rows) override {
    const int64_t total = rows();
    if (first < 0 || first > total || max_rows < 0) {
      throw Error(fmt::format("{}: rows [{}, +{}) out of range (file has {})", m_path, first, max_rows, total));
    }
    const int64_t n = std::min(max_rows, total - first);
    const size_t item = m_h.descr.itemsize;
    Shape out_shape = m_h.shape;
    if (out_shape.empty()) {
      if (n == 0) {
        return Array(dtype(), {0});
      }
    } else {
      out_shape[0] = n;
    }
    const size_t items = row_items();
    if (const MappedFile* file = mapped(); file != nullptr) {
      const size_t row_size = items * item;
      release_before(*file, static_cast<size_t>(first) * row_size);
      return Array::view(
          dtype(), std::move(out_shape),
          file->bytes().subspan(static_cast<size_t>(first) * row_size, static_cast<size_t>(n) * row_size), m_mapped);
    }
    std::vector<std::byte> bytes(static_cast<size_t>(n) * items * item);
    if (m_h.fortran && m_h.shape.size() >= 2) {
      read_fortran(first, n, items, bytes);
    } else if (!bytes.empty()) {
      pread_exact(m_fd.get(), m_path, bytes.data(), bytes.size(),
                  m_h.data_offset + static_cast<uint64_t>(first) * items * item);
    }
    if (m_h.descr.swap) {
      byteswap_elements(bytes.data(), bytes.size() / item, item);
    }
    return Array(dtype(), std::move(out_shape), std::move(bytes));
  }

  std::vector<int64_t> nonfinite_rows(int64_t block_rows) override {
    const MappedFile* file = dtype_is_float(dtype()) ? mapped() : nullptr;
    if (file == nullptr) {
      return ArrayReader::nonfinite_rows(block_rows);
    }
    // In chunks, each dropped once checked, so that checking a file larger than memory
    // keeps the resident set bounded.
    std::vector<int64_t> bad;
    const auto items = static_cast<int64_t>(row_items());
    const size_t row_size = row_items() * m_h.descr.itemsize;
    const int64_t chunk = std::max<int64_t>(1, static_cast<int64_t>(k_release_lag / std::max<size_t>(row_size, 1)));
    for (int64_t first = 0; first < rows(); first += chunk) {
      const int64_t n = std::min(chunk, rows() - first);
      append_nonfinite_rows(dtype(), file->bytes().data() + static_cast<size_t>(first) * row_size, n, items, first,
                            bad);
      file->release(static_cast<size_t>(first) * row_size, static_cast<size_t>(n) * row_size);
    }
    return bad;
  }

 private:
  size_t row_items() const {
    return static_cast<size_t>(m_h.shape.empty() ? 1 : shape_product(std::span(m_h.shape).subspan(1)));
  }

  // Blocks are read in increasing order (ingest, copy, export); the pages more than
  // k_release_lag bytes behind the block asked for are dropped from memory (blocks still in
  // flight behind it stay mapped; were one touched again, it is read back from the file).
  static constexpr size_t k_release_lag = size_t{64} << 20;
  void release_before(const MappedFile& file, size_t offset) {
    if (offset > m_released + k_release_lag) {
      file.release(m_released, offset - k_release_lag - m_released);
      m_released = offset - k_release_lag;
    }
  }

  // The whole data region mapped, for a file already in native C order: its blocks are then
  // views (Array::view) instead of copies, and the NaN check before an ingest reads the same
  // pages the writers send. Null for byte-swapped or Fortran-order data (those are converted
  // block by block), an empty array, or if mmap fails (pread is the fallback).
  const MappedFile* mapped() {
    std::call_once(m_map_once, [&] {
      const size_t length = static_cast<size_t>(rows()) * row_items() * m_h.descr.itemsize;
      if (!m_h.descr.swap && !(m_h.fortran && m_h.shape.size() >= 2) && length > 0) {
        m_mapped = MappedFile::map(m_fd.get(), m_path, m_h.data_offset, length);
      }
    });
    return m_mapped.get();
  }

  // Fortran order keeps the first axis fastest: for rows [first, first+n) each of the
  // row_items trailing positions is one contiguous run of n items. Reading run by run keeps
  // memory bounded by the block, at one pread per trailing position (one in total when the
  // block is the whole array).
  void read_fortran(int64_t first, int64_t n, size_t row_items, std::vector<std::byte>& out) {
    if (n == 0 || row_items == 0) {
      return;
    }
    const size_t item = m_h.descr.itemsize;
    const auto d0 = static_cast<uint64_t>(m_h.shape[0]);
    const auto un = static_cast<size_t>(n);
    std::vector<std::byte> runs(out.size());
    if (static_cast<uint64_t>(n) == d0) {
      pread_exact(m_fd.get(), m_path, runs.data(), runs.size(), m_h.data_offset);
    } else {
      for (size_t t = 0; t < row_items; ++t) {
        pread_exact(m_fd.get(), m_path, runs.data() + t * un * item, un * item,
                    m_h.data_offset + (t * d0 + static_cast<uint64_t>(first)) * item);
      }
    }
    // Walk the trailing indices in Fortran order (t) while tracking their C-order index (c).
    const size_t nd = m_h.shape.size();
    std::vector<int64_t> idx(nd, 0);
    std::vector<size_t> c_stride(nd, 1);
    for (size_t k = nd - 1; k >= 2; --k) {
      c_stride[k - 1] = c_stride[k] * static_cast<size_t>(m_h.shape[k]);
    }
    size_t c = 0;
    for (size_t t = 0; t < row_items; ++t) {
      for (size_t r = 0; r < un; ++r) {
        std::memcpy(out.data() + (r * row_items + c) * item, runs.data() + (t * un + r) * item, item);
      }
      for (size_t k = 1; k < nd; ++k) {
        if (++idx[k] < m_h.shape[k]) {
          c += c_stride[k];
          break;
        }
        c -= static_cast<size_t>(idx[k] - 1) * c_stride[k];
        idx[k] = 0;
      }
    }
  }

  std::string m_path;
  Fd m_fd;
  NpyHeader m_h;
  std::once_flag m_map_once;
  std::shared_ptr<const MappedFile> m_mapped;
  size_t m_released = 0;  // bytes of the mapping dropped so far (release_before)
};

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Decodes UTF-8 into code points; nullopt on malformed input.
std::optional<std::vector<uint32_t>> decode_utf8(std::string_view s) {
  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + static_cast<size_t>(len) > s.size()) {
      return std::nullopt;
    }
    uint32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1fu) : len == 3 ? (b0 & 0x0fu) : (b0 & 0x07u);
    for (int k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((b >> 6) != 2) {
        return std::nullopt;
      }
      cp = (cp << 6) | (b & 0x3fu);
    }
    const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return std::nullopt;
    }
    cps.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return cps;
}

void write_all(std::FILE* out, const void* data, size_t size) {
  if (size > 0 && std::fwrite(data, 1, size, out) != size) {
    if (out == stdout) {
      output::stdout_write_failed(errno);
    }
    throw Error(fmt::format("write failed: {}", std::strerror(errno)));
  }
}

}  // namespace

std::unique_ptr<ArrayReader> open_npy(const std::string& path) {
  Fd fd = open_for_reading(path);
  NpyHeader h = read_header(fd.get(), path);
  if (h.descr.kind != NpyKind::numeric) {
    throw UsageError(fmt::format("{}: holds strings ('{}'), not numbers; use it as ids", path, h.descr.text));
  }
  return std::make_unique<NpyReader>(path, std::move(fd), std::move(h));
}

bool npy_holds_strings(const std::string& path) {
  Fd fd = open_for_reading(path);
  return read_header(fd.get(), path).descr.kind != NpyKind::numeric;
}

std::vector<std::string> read_npy_strings(const std::string& path) {
  Fd fd = open_for_reading(path);
  const NpyHeader h = read_header(fd.get(), path);
  if (h.descr.kind == NpyKind::numeric) {
    throw UsageError(fmt::format("{}: holds {}, not strings", path, dtype_name(h.descr.dtype)));
  }
  if (h.shape.size() > 1) {
    throw UsageError(fmt::format("{}: expected a 1-d array of strings, got shape {}", path, shape_to_string(h.shape)));
  }
  const auto count = static_cast<size_t>(shape_product(h.shape));
  const size_t item = h.descr.itemsize;
  std::vector<std::string> out;
  out.reserve(count);
  // Blocks of at most 16 MiB keep memory near the size of the result.
  const size_t block = item == 0 ? count : std::max<size_t>(1, (size_t{16} << 20) / item);
  std::vector<std::byte> buf;
  for (size_t done = 0; done < count;) {
    const size_t n = std::min(block, count - done);
    buf.resize(n * item);
    if (!buf.empty()) {
      pread_exact(fd.get(), path, buf.data(), buf.size(), h.data_offset + done * item);
    }
    for (size_t i = 0; i < n; ++i) {
      const std::byte* p = buf.data() + i * item;
      std::string s;
      if (h.descr.kind == NpyKind::bytes) {
        s.assign(reinterpret_cast<const char*>(p), item);
      } else {
        for (size_t k = 0; k < item / 4; ++k) {
          uint32_t cp;
          std::memcpy(&cp, p + k * 4, 4);
          if (h.descr.swap) {
            cp = __builtin_bswap32(cp);
          }
          if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            throw UsageError(fmt::format("{}: string {} holds an invalid code point {:#x}", path, done + i, cp));
          }
          put_utf8(s, cp);
        }
      }
      // numpy pads with NULs and strips them on read; do the same.
      while (!s.empty() && s.back() == '\0') {
        s.pop_back();
      }
      out.push_back(std::move(s));
    }
    done += n;
  }
  return out;
}

void write_npy_stream(std::FILE* out, const Array& array) {
  const std::string header = make_npy_header(npy_descr_for(array.dtype()), array.shape());
  write_all(out, header.data(), header.size());
  write_all(out, array.data(), array.nbytes());
}

void write_npy_strings_stream(std::FILE* out, const std::vector<std::string>& strings) {
  std::vector<std::vector<uint32_t>> decoded;
  decoded.reserve(strings.size());
  size_t width = 1;
  for (size_t i = 0; i < strings.size(); ++i) {
    auto cps = decode_utf8(strings[i]);
    if (!cps) {
      throw UsageError(fmt::format("string {} (\"{}\") is not valid UTF-8", i, strings[i]));
    }
    width = std::max(width, cps->size());
    decoded.push_back(std::move(*cps));
  }
  const std::string header = make_npy_header(fmt::format("<U{}", width), {static_cast<int64_t>(strings.size())});
  write_all(out, header.data(), header.size());
  std::vector<uint32_t> row(width);
  for (const auto& cps : decoded) {
    std::fill(row.begin(), row.end(), 0u);
    std::copy(cps.begin(), cps.end(), row.begin());
    write_all(out, row.data(), row.size() * 4);
  }
}

void write_npy(const std::string& path, const Array& array) {
  AtomicFile file(path);
  try {
    write_npy_stream(file.stream(), array);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()), e.code());
  }
  file.commit();
}

void write_npy_strings(const std::string& path, const std::vector<std::string>& strings) {
  AtomicFile file(path);
  try {
    write_npy_strings_stream(file.stream(), strings);
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("{}: {}", path, e.what()));
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }
  file.commit();
}

NpyBlockWriter::NpyBlockWriter(std::string path, DType dtype, Shape row_shape, int64_t rows)
    : m_path(std::move(path)), m_dtype(dtype), m_row_shape(std::move(row_shape)), m_rows(rows), m_file(m_path) {
  Shape shape{rows};
  shape.insert(shape.end(), m_row_shape.begin(), m_row_shape.end());
  const std::string header = make_npy_header(npy_descr_for(dtype), shape);
  m_header_bytes = header.size();
  m_file.write(header.data(), header.size());
}

void NpyBlockWriter::append(const Array& rows) {
  if (rows.dtype() != m_dtype || rows.row_shape() != m_row_shape) {
    throw Error(fmt::format("{}: rows of {} {} appended to an array of {} {}", m_path, dtype_name(rows.dtype()),
                            shape_to_string(rows.row_shape()), dtype_name(m_dtype), shape_to_string(m_row_shape)));
  }
  m_file.write(rows.data(), rows.nbytes());
  m_written += rows.rows();
}

void NpyBlockWriter::finish() {
  if (m_written == m_rows) {
    return;
  }
  Shape shape{m_written};
  shape.insert(shape.end(), m_row_shape.begin(), m_row_shape.end());
  const std::string header = make_npy_header(npy_descr_for(m_dtype), shape);
  if (header.size() != m_header_bytes) {
    throw RetryableError(
        fmt::format("{}: the dataset changed while it was written ({} rows when it began, {} read); "
                    "run it again",
                    m_path, m_rows, m_written));
  }
  std::FILE* f = m_file.stream();
  if (std::fseek(f, 0, SEEK_SET) != 0) {
    throw Error(fmt::format("{}: cannot seek: {}", m_path, std::strerror(errno)));
  }
  m_file.write(header.data(), header.size());
  if (std::fseek(f, 0, SEEK_END) != 0) {
    throw Error(fmt::format("{}: cannot seek: {}", m_path, std::strerror(errno)));
  }
  m_rows = m_written;
}

NpyStringsBlockWriter::NpyStringsBlockWriter(std::string path) : m_path(std::move(path)), m_file(m_path) {
  m_spool = std::tmpfile();
  if (m_spool == nullptr) {
    throw Error(fmt::format("{}: cannot create a temporary file: {}", m_path, std::strerror(errno)));
  }
}

NpyStringsBlockWriter::~NpyStringsBlockWriter() {
  if (m_spool != nullptr) {
    std::fclose(m_spool);
  }
}

// Spool records: the code point count (uint32) then the code points.
void NpyStringsBlockWriter::append(const std::vector<std::string>& strings) {
  for (const auto& s : strings) {
    auto cps = decode_utf8(s);
    if (!cps) {
      throw UsageError(fmt::format("{}: string {} (\"{}\") is not valid UTF-8", m_path, m_count, s));
    }
    const auto n = static_cast<uint32_t>(cps->size());
    m_width = std::max<size_t>(m_width, n);
    try {
      write_all(m_spool, &n, sizeof n);
      write_all(m_spool, cps->data(), cps->size() * 4);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", m_path, e.what()));
    }
    ++m_count;
  }
}

void NpyStringsBlockWriter::finish() {
  const std::string header = make_npy_header(fmt::format("<U{}", m_width), {m_count});
  m_file.write(header.data(), header.size());
  if (std::fflush(m_spool) != 0 || std::fseek(m_spool, 0, SEEK_SET) != 0) {
    throw Error(fmt::format("{}: cannot read back the temporary file: {}", m_path, std::strerror(errno)));
  }
  std::vector<uint32_t> row(m_width);
  for (int64_t i = 0; i < m_count; ++i) {
    uint32_t n = 0;
    if (std::fread(&n, sizeof n, 1, m_spool) != 1 || n > m_width) {
      throw Error(fmt::format("{}: cannot read back the temporary file", m_path));
    }
    std::fill(row.begin(), row.end(), 0u);
    if (n > 0 && std::fread(row.data(), 4, n, m_spool) != n) {
      throw Error(fmt::format("{}: cannot read back the temporary file", m_path));
    }
    m_file.write(row.data(), row.size() * 4);
  }
}

}  // namespace vstash::io
