// SPDX-License-Identifier: MIT
// Writer parts (backends/common/writerparts.hpp) over an in-memory "server" whose shared record
// is written last-writer-wins, as Qdrant's catalog point is: each SplitRecords instance is
// one process.
#include <doctest/doctest.h>

#include <map>

#include "backends/common/writerparts.hpp"

using namespace vstash;
using namespace vstash::backends;
using namespace vstash::backends::catalog;

namespace {

struct Server {
  std::map<std::string, DatasetRecord> shared;
  std::map<std::string, std::map<std::string, WriterPart>> parts;
  int part_reads = 0;
};

class Process final : public SplitRecords {
 public:
  explicit Process(Server& server) : m_server(server) {}
  std::string location() const override { return "mem"; }

 protected:
  std::optional<DatasetRecord> shared_get(const std::string& name) override {
    auto it = m_server.shared.find(name);
    return it == m_server.shared.end() ? std::nullopt : std::optional(it->second);
  }
  std::vector<DatasetRecord> shared_list() override {
    std::vector<DatasetRecord> out;
    for (const auto& [name, r] : m_server.shared) {
      out.push_back(r);
    }
    return out;
  }
  bool shared_insert(const DatasetRecord& record) override {
    m_server.shared[record.spec.name] = record;  // last writer wins
    return true;
  }
  bool shared_compare_and_set(const DatasetRecord& /*seen*/, const DatasetRecord& next) override {
    m_server.shared[next.spec.name] = next;  // no conditional write
    return true;
  }
  bool shared_remove(const std::string& name) override { return m_server.shared.erase(name) > 0; }
  std::vector<WriterPart> load_parts(const std::string& name) override {
    ++m_server.part_reads;
    std::vector<WriterPart> out;
    for (const auto& [w, p] : m_server.parts[name]) {
      out.push_back(part_from_json(part_to_json(p), "mem"));  // through the stored form
    }
    return out;
  }
  void save_part(const std::string& name, const WriterPart& part) override { m_server.parts[name][part.writer] = part; }
  void drop_parts(const std::string& name) override { m_server.parts.erase(name); }

 private:
  Server& m_server;
};

DatasetSpec spec_with(json metadata) {
  DatasetSpec s;
  s.name = std::string("d");  // not a literal: GCC 12 -Wrestrict false positive (CI -Werror)
  s.row_shape = {4};
  s.metadata = std::move(metadata);
  return s;
}

// Two processes read the record, then each writes its own change (next_index and its own
// resume key) over what it read: the race of two ranks' writes.
void race(Process& a, Process& b) {
  DatasetRecord ra = *a.get("d");
  DatasetRecord rb = *b.get("d");
  DatasetRecord na = ra;
  na.next_index = 5;
  na.spec.metadata["mark_0"] = 5;
  DatasetRecord nb = rb;
  nb.next_index = 10;
  nb.spec.metadata["mark_1"] = 10;
  nb.extra["row_bytes"] = 40;
  CHECK(a.compare_and_set(ra, na));
  CHECK(b.compare_and_set(rb, nb));
}

}  // namespace

TEST_SUITE("backends::writerparts") {
  TEST_CASE("without names, the last of two racing writers loses the other's changes") {
    Server server;
    Process a(server), b(server);
    Catalog(a).create(spec_with({{"world", 2}}));
    race(a, b);
    const DatasetRecord r = *Process(server).get("d");
    CHECK(r.next_index == 10);
    CHECK_FALSE(r.spec.metadata.contains("mark_0"));  // the read-modify-write lost it
  }

  TEST_CASE("named writers keep each other's next_index, metadata and counters") {
    Server server;
    Process a(server), b(server);
    a.set_writer("rank-0");
    b.set_writer("rank-1");
    CHECK(Catalog(a).create(spec_with({{"world", 2}, {"mark_0", 0}})));
    Catalog(b).create(spec_with({{"world", 2}, {"mark_1", 5}}));
    race(a, b);
    const DatasetRecord r = *Process(server).get("d");
    CHECK(r.next_index == 10);
    CHECK(r.spec.metadata == json{{"world", 2}, {"mark_0", 5}, {"mark_1", 10}});
    CHECK(r.extra.value("row_bytes", 0) == 40);
    CHECK(has_parts(server.shared["d"]));
    CHECK(server.parts["d"].size() == 2);
    CHECK(Process(server).list().at(0).spec.metadata == r.spec.metadata);

    SUBCASE("a rank run again (a new process) continues its own part") {
      Process again(server);
      again.set_writer("rank-0");
      Catalog c(again);
      CHECK(c.require("d").spec.metadata["mark_0"] == 5);
      c.advance("d", 7);
      CHECK_FALSE(c.create(spec_with({{"mark_0", 7}})));
      CHECK(server.parts["d"]["rank-0"].metadata["mark_0"] == 7);
      CHECK(server.parts["d"]["rank-1"].metadata["mark_1"] == 10);
      const DatasetRecord after = *Process(server).get("d");
      CHECK(after.spec.metadata["mark_0"] == 7);
      CHECK(after.next_index == 10);
    }
    SUBCASE("a single writer's change folds the parts back into the record") {
      Process one(server);
      Catalog(one).create(spec_with({{"note", "x"}}));
      CHECK(server.parts.count("d") == 0);
      CHECK_FALSE(has_parts(server.shared["d"]));
      CHECK(server.shared["d"].spec.metadata == json{{"world", 2}, {"mark_0", 5}, {"mark_1", 10}, {"note", "x"}});
      CHECK(server.shared["d"].next_index == 10);
      CHECK(server.shared["d"].extra.value("row_bytes", 0) == 40);
    }
    SUBCASE("removing the dataset removes the parts") {
      CHECK(Process(server).remove("d"));
      CHECK(server.parts.count("d") == 0);
      CHECK_FALSE(Process(server).get("d"));
    }
  }

  TEST_CASE("a single writer reads and writes the record alone, as before") {
    Server server;
    Process one(server);
    Catalog c(one);
    c.create(spec_with({{"a", 1}}));
    c.advance("d", 3);
    c.create(spec_with({{"b", 2}}));
    CHECK(server.part_reads == 0);
    CHECK(server.parts.empty());
    CHECK_FALSE(has_parts(server.shared["d"]));
    CHECK(server.shared["d"].next_index == 3);
  }

  TEST_CASE("a stored part that is not one is a one-line error") {
    CHECK_THROWS_WITH_AS(part_from_json(json{{"writer", "w"}}, "dataset \"d\""),
                         doctest::Contains("dataset \"d\": corrupt writer record"), Error);
    CHECK_THROWS_WITH_AS(
        part_from_json(json{{"writer", "w"}, {"next_index", -1}, {"metadata", {}}, {"extra", {}}}, "dataset \"d\""),
        "dataset \"d\": corrupt writer record", Error);
  }
}
