// SPDX-License-Identifier: MIT
// UUID helpers for stores that only accept UUID or integer ids (Qdrant).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vstash::util {

// RFC 4122 name-based UUID (version 5, SHA-1), lower-case hyphenated.
std::string uuid_v5(std::string_view namespace_uuid, std::string_view name);
// The canonical lower-case hyphenated form if s is a UUID in simple, hyphenated, braced or
// urn:uuid: form; nullopt otherwise.
std::optional<std::string> canonical_uuid(std::string_view s);
std::string sha1_hex(std::string_view data);

}  // namespace vstash::util
