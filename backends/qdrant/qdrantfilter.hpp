// SPDX-License-Identifier: MIT
// The shared filter language (src/filter.hpp) as a Qdrant filter.
#pragma once

#include "../backend.hpp"

namespace vstash::backends::qdrant {

struct TranslatedFilter {
  json filter = json::object();  // a Qdrant Filter object; {} matches everything
  // False when filter is only a superset of the matches: the caller must post-filter with
  // Filter::matches on the user metadata (see qdrantfilter.cpp for when that happens).
  bool exact = true;
};

// The payload path of a user metadata key ("metadata.<key>"), or empty when the key cannot be
// written as a Qdrant key path (a '.', '[', ']', '"', space, ...).
std::string metadata_path(const std::string& key);
TranslatedFilter translate_filter(const Filter* filter);
// {"must": [a, b]} without empty parts.
json filter_and(const json& a, const json& b);

}  // namespace vstash::backends::qdrant
