// SPDX-License-Identifier: MIT
// rclone-style dataset addresses for `vstash copy` and `vstash check`:
//   PROFILE:DATASET   dataset DATASET of profile PROFILE (from the profile file)
//   DATASET           dataset DATASET of the current profile (--profile, else the default)
//   :DATASET          the same, for a dataset name that itself contains a colon
// The address splits at its first colon; PROFILE is 1-128 of [A-Za-z0-9._-].
#pragma once

#include <optional>
#include <string>

namespace vstash {
class Profile;
struct ProfileFile;
}  // namespace vstash

namespace vstash::transfer {

struct Address {
  std::optional<std::string> profile;  // nullopt: the current profile
  std::string dataset;
};

// Throws UsageError naming the address (and `what`, e.g. "SRC") if it is malformed: an empty
// dataset, a profile part that is no profile name, a dataset name no store takes.
Address parse_address(const std::string& text, const std::string& what);

// The address's profile: its named profile from `file`, else `current`. Throws
// NotFoundError listing the known profiles.
Profile address_profile(const Address& address, const ProfileFile& file, const Profile& current);

// True when two profiles reach the same data: the same type and the same keys that say where
// (path, resolved; host, port, database, table_name, prefix, collection_name, index_name),
// whatever their names and tuning keys. Copying a dataset onto itself under two profile names
// would drop (--replace) or rewrite the source.
bool same_store(const Profile& a, const Profile& b);

}  // namespace vstash::transfer
