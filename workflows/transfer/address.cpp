// SPDX-License-Identifier: MIT
#include "workflows/transfer/address.hpp"

#include <fmt/format.h>
#include <filesystem>

#include "backends/backend.hpp"
#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/profile.hpp"

namespace vstash::transfer {

namespace {

bool is_profile_name(const std::string& s) {
  if (s.empty() || s.size() > 128) {
    return false;
  }
  for (const char c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace

Address parse_address(const std::string& text, const std::string& what) {
  Address a;
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    a.dataset = text;
  } else {
    const std::string head = text.substr(0, colon);
    if (!head.empty() && !is_profile_name(head)) {
      throw UsageError(
          fmt::format("{} \"{}\": malformed address: \"{}\" is not a profile name (use PROFILE:DATASET, "
                      "or :DATASET for a dataset name with a colon)",
                      what, text, head));
    }
    if (!head.empty()) {
      a.profile = head;
    }
    a.dataset = text.substr(colon + 1);
  }
  if (a.dataset.empty()) {
    throw UsageError(
        fmt::format("{} \"{}\": malformed address: no dataset (use PROFILE:DATASET or DATASET)", what, text));
  }
  try {
    backends::check_dataset_name(a.dataset);
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("{} \"{}\": {}", what, text, e.what()));
  }
  return a;
}

bool same_store(const Profile& a, const Profile& b) {
  return backends::store_identity(a) == backends::store_identity(b);
}

Profile address_profile(const Address& address, const ProfileFile& file, const Profile& current) {
  if (!address.profile || *address.profile == current.name()) {
    return current;
  }
  return select_profile(file, *address.profile);
}

}  // namespace vstash::transfer
