// SPDX-License-Identifier: MIT
// The input of `vstash ingest`: a data file (NPY, FILE.h5:/path, an ann-benchmarks HDF5
// file, or JSONL) plus optional labels, ids and metadata files, checked against each other
// before anything is written.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "src/io/arrayfile.hpp"
#include "workflows/ingest/pipeline.hpp"

namespace CLI {
class App;
}

namespace vstash::commands {

struct IngestFiles {
  std::string data;
  std::string labels;
  std::string ids;
  std::string metadata;
};

// --rank R --world-size W of `ingest` and `copy` (workflows/ingest/pipeline.hpp: the slices).
struct ShardFlags {
  ingest::Shard shard;
  bool rank_given = false;
  bool world_size_given = false;
  // Adds both options to `sub`; `env` is the variables' infix (VSTASH_<env>_RANK).
  void add_to(CLI::App& sub, const std::string& env, const std::string& what);
  // Both or neither, 1 <= W <= 2^20, 0 <= R < W; one-line UsageError naming the flag.
  void check() const;
  // W ranks are W writers of one dataset at once: names a connection of this rank for the
  // store (ingest::writer_name), before it writes anything.
  void name_writer(backends::Backend& store) const;
};

class IngestSource {
 public:
  // Opens every file and checks row counts and ids; throws UsageError naming the file.
  static IngestSource open(const IngestFiles& files);

  const std::string& name() const { return m_name; }
  DType dtype() const;
  Shape row_shape() const;
  int64_t rows() const;
  const std::optional<Array>& labels() const { return m_labels; }
  // The metric an ann-benchmarks file declares (its `distance` attribute), if any.
  std::optional<backends::Metric> metric() const { return m_metric; }
  // A one-line remark for the user ("ann-benchmarks file: ingesting /train ...").
  const std::string& remark() const { return m_remark; }

  // Rows [first, first+count) as a batch; ids default to std::to_string(base + row).
  backends::RowBatch read(int64_t first, int64_t count, int64_t base);
  // Reads every row once and throws one UsageError listing the rows holding NaN or Inf.
  void check_finite_all(int64_t block_rows);

 private:
  std::string m_name;
  std::unique_ptr<io::ArrayReader> m_reader;  // NPY/HDF5
  std::optional<Array> m_whole;               // JSONL
  std::optional<Array> m_labels;
  std::vector<std::string> m_ids;
  std::vector<nlohmann::json> m_metadata;
  std::optional<backends::Metric> m_metric;
  std::string m_remark;
};

}  // namespace vstash::commands
