// SPDX-License-Identifier: MIT
// What `copy` and `check` share: opening a PROFILE:DATASET address on its own connection,
// extra writer connections, and showing a comparison.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands/context.hpp"
#include "workflows/transfer/compare.hpp"

namespace vstash::commands {

struct Endpoint {
  Profile profile;
  std::string dataset;  // empty for a checkpoints endpoint
  std::string label;    // "PROFILE:DATASET" (or "PROFILE:"), as messages and --resume name it
  std::unique_ptr<backends::Backend> backend;
};

// Opens a dataset address (workflows/transfer/address.hpp); `what` ("SRC", "DST") names it in errors.
Endpoint open_endpoint(Context& ctx, const std::string& text, const std::string& what, backends::Access access);
// Opens a store for checkpoints: PROFILE or PROFILE: (a dataset part is a usage error).
Endpoint open_store(Context& ctx, const std::string& text, const std::string& what, backends::Access access);

// n connections to the endpoint's store for the copy's writers (n == 1: its own).
struct Writers {
  std::vector<std::unique_ptr<backends::Backend>> own;
  std::vector<backends::Backend*> pointers;
};
Writers writer_connections(Endpoint& end, int n, Context& ctx);

// Compares the two endpoints' datasets with a progress bar.
transfer::CompareResult compare_endpoints(Endpoint& src, Endpoint& dst, const transfer::CompareOptions& options,
                                          Context& ctx);
// The differences as text on stdout ("equal: ..." or one line per kind of difference).
void print_differences(const transfer::CompareResult& r, const std::string& src, const std::string& dst);
// The comparison's --json keys (docs/cli.md, `check`).
nlohmann::json compare_json(const transfer::CompareResult& r);

}  // namespace vstash::commands
