// SPDX-License-Identifier: MIT
// Move-only ownership of HDF5 hid_t identifiers (after HighFive's H5Object) and the error
// plumbing shared by the HDF5 reader and writer.
#pragma once

#include <hdf5.h>
#include <string>
#include <utility>

namespace vstash::io::hdf5 {

class Hid {
 public:
  Hid() = default;
  explicit Hid(hid_t id) noexcept : m_id(id) {}
  ~Hid() { reset(); }
  Hid(Hid&& other) noexcept : m_id(std::exchange(other.m_id, H5I_INVALID_HID)) {}
  Hid& operator=(Hid&& other) noexcept {
    if (this != &other) {
      reset();
      m_id = std::exchange(other.m_id, H5I_INVALID_HID);
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;

  hid_t get() const noexcept { return m_id; }
  explicit operator bool() const noexcept { return m_id >= 0; }
  hid_t release() noexcept { return std::exchange(m_id, H5I_INVALID_HID); }
  // A failed close cannot be reported from a destructor; HDF5 keeps its own error stack.
  void reset() noexcept {
    if (m_id >= 0 && H5Iis_valid(m_id) > 0) {
      H5Idec_ref(m_id);
    }
    m_id = H5I_INVALID_HID;
  }

 private:
  hid_t m_id = H5I_INVALID_HID;
};

// Turns off HDF5's printing of its error stack to stderr (once per process).
void quiet_errors();
// The innermost message of HDF5's error stack ("file signature not found"), then clears it.
std::string error_detail();
// Wraps an id-returning call: throws Error("<context>: <what>: <detail>") if id < 0.
Hid check(hid_t id, const std::string& context, const char* what);
void check(herr_t status, const std::string& context, const char* what);

// Throws UsageError unless `file` exists and is an HDF5 file ("x.h5: not an HDF5 file").
void require_hdf5_file(const std::string& file);
// True if `path` names a dataset in the open file (false for missing paths and groups).
bool dataset_exists(hid_t file, const std::string& path);
bool object_exists(hid_t file, const std::string& path);

}  // namespace vstash::io::hdf5
