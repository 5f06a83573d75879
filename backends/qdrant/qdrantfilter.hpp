// SPDX-License-Identifier: MIT
// The shared filter language (src/filter.hpp) as a Qdrant filter.
#pragma once

#include "backends/backend.hpp"

namespace vstash::backends::qdrant {

struct TranslatedFilter {
  json filter = json::object();  // a Qdrant Filter object; {} matches everything
  // False when filter is only a superset of the matches: the caller must post-filter with
  // Filter::matches on the user metadata (see qdrantfilter.cpp for when that happens).
  bool exact = true;
};

// The payload path of a user metadata key ("metadata.<key>", quoted as metadata."a.b" when
// the key is not a plain segment), or empty when the key cannot be written (empty, or
// holding '"').
std::string metadata_path(const std::string& key);
// aids: the dataset's rows carry _keys and _num (qdrantpoints.hpp), which make $exists and
// $gt..$lte exact. spec: the dataset's, needed by a filter on $label (the payload's "label";
// throws UsageError when the dataset has no scalar labels).
TranslatedFilter translate_filter(const Filter* filter, bool aids = true, const DatasetSpec* spec = nullptr);
// The $label value of a point's payload (its "label" as label_value() would give it), for the
// client-side Filter::matches; null when the filter does not name $label.
json payload_label(const json& payload, const Filter& filter, const DatasetSpec& spec);
// {"must": [a, b]} without empty parts.
json filter_and(const json& a, const json& b);

}  // namespace vstash::backends::qdrant
