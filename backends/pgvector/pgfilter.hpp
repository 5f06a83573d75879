// SPDX-License-Identifier: MIT
// The shared metadata filter (src/filter.hpp) as a SQL boolean expression over a jsonb
// column. Every key and value is a bound parameter: no filter text reaches the SQL.
#pragma once

#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace vstash::backends::pgvector {

struct SqlFilter {
  std::string sql = "TRUE";         // a boolean expression
  std::vector<std::string> params;  // text values for $first, $first+1, ...
};

// column is the jsonb expression holding the metadata object (SQL NULL means {});
// placeholders are numbered from first_param. A null or empty filter gives TRUE. $label reads
// label_column (the bytea of the row's label) decoded per spec's label dtype; a filter on
// $label needs spec, and throws UsageError when the dataset has no scalar labels.
SqlFilter translate_filter(const Filter* filter, const std::string& column, int first_param,
                           const DatasetSpec* spec = nullptr, const std::string& label_column = "label");
// The SQL float8 expression (boolean for bool) of a scalar label of dtype t held as
// little-endian bytes in the bytea expression column: exactly label_value()'s number.
std::string label_sql(DType t, const std::string& column);

}  // namespace vstash::backends::pgvector
