// SPDX-License-Identifier: MIT
// A backend that forwards every call to another one: tests derive from it and override the
// calls they want to observe, delay or fail.
#pragma once

#include "backends/backend.hpp"

namespace vstash::testutil {

class ForwardingBackend : public backends::Backend {
 public:
  explicit ForwardingBackend(backends::Backend& inner) : m_inner(inner) {}

  std::string kind() const override { return m_inner.kind(); }
  void create_dataset(const backends::DatasetSpec& s) override { m_inner.create_dataset(s); }
  std::optional<backends::DatasetInfo> dataset_info(const std::string& d) override { return m_inner.dataset_info(d); }
  std::vector<backends::DatasetInfo> list_datasets() override { return m_inner.list_datasets(); }
  bool drop_dataset(const std::string& d) override { return m_inner.drop_dataset(d); }
  void write_rows(const std::string& d, const backends::RowBatch& b) override { m_inner.write_rows(d, b); }
  backends::RowBatch read_rows(const std::string& d, int64_t offset, int64_t count) override {
    return m_inner.read_rows(d, offset, count);
  }
  backends::RowBatch read_positions(const std::string& d, const std::vector<int64_t>& p) override {
    return m_inner.read_positions(d, p);
  }
  backends::RowBatch fetch(const std::string& d, const std::vector<std::string>& ids) override {
    return m_inner.fetch(d, ids);
  }
  void update_row(const std::string& d, const std::string& id, const std::optional<Array>& s,
                  const std::optional<backends::json>& m) override {
    m_inner.update_row(d, id, s, m);
  }
  int64_t delete_ids(const std::string& d, const std::vector<std::string>& ids) override {
    return m_inner.delete_ids(d, ids);
  }
  int64_t delete_where(const std::string& d, const Filter& f) override { return m_inner.delete_where(d, f); }
  int64_t count(const std::string& d, const Filter* f) override { return m_inner.count(d, f); }
  std::vector<backends::QueryHit> query(const std::string& d, const std::vector<float>& v,
                                        const backends::QueryOptions& o) override {
    return m_inner.query(d, v, o);
  }
  backends::CheckpointStore& checkpoints() override { return m_inner.checkpoints(); }
  backends::ProgressStore& progress() override { return m_inner.progress(); }
  backends::Stats stats() override { return m_inner.stats(); }
  int ingest_writers() const override { return m_inner.ingest_writers(); }
  int max_ingest_writers() const override { return m_inner.max_ingest_writers(); }
  void set_writer(const std::string& w) override { m_inner.set_writer(w); }
  std::string finish_ingest(const std::string& d, const backends::IndexProgressFn& p) override {
    return m_inner.finish_ingest(d, p);
  }

 protected:
  backends::Backend& m_inner;
};

}  // namespace vstash::testutil
