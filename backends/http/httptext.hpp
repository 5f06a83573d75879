// SPDX-License-Identifier: MIT
// Text helpers of the HTTP layer: header names, trimmed values, and the server's own words
// from an error body as one scrubbed line.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vstash::backends::http {

// s in lower case (ASCII): header names are compared case-insensitively.
std::string lower(std::string s);
// s without leading and trailing white space.
std::string trim(std::string_view s);
// The server's own words from an error body, as one line of at most 300 characters: JSON
// {"status":{"error"}} (Qdrant), {"error":{"message"}} (Pinecone control plane), {"message"}
// (Pinecone data plane), {"error"} or the raw text; every secret value (4 characters or more)
// of `secrets` (name, value pairs) replaced by "***".
std::string server_message(const std::string& body, const std::vector<std::pair<std::string, std::string>>& secrets);

}  // namespace vstash::backends::http
