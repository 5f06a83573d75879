// SPDX-License-Identifier: MIT
// The shared metadata filter (src/filter.hpp) as a SQL boolean expression over a jsonb
// column. Every key and value is a bound parameter: no filter text reaches the SQL.
#pragma once

#include <string>
#include <vector>

#include "../../src/filter.hpp"

namespace vstash::backends::pgvector {

struct SqlFilter {
  std::string sql = "TRUE";         // a boolean expression
  std::vector<std::string> params;  // text values for $first, $first+1, ...
};

// column is the jsonb expression holding the metadata object (SQL NULL means {});
// placeholders are numbered from first_param. A null or empty filter gives TRUE.
SqlFilter translate_filter(const Filter* filter, const std::string& column, int first_param);

}  // namespace vstash::backends::pgvector
