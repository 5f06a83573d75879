// SPDX-License-Identifier: MIT
#include "commands/transfer.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backends/registry.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"
#include "src/progress.hpp"
#include "workflows/transfer/address.hpp"

namespace vstash::commands {

Endpoint open_endpoint(Context& ctx, const std::string& text, const std::string& what, backends::Access access) {
  const transfer::Address a = transfer::parse_address(text, what);
  Endpoint e{transfer::address_profile(a, ctx.profile_file(), ctx.profile()), a.dataset, "", nullptr};
  e.label = e.profile.name() + ":" + e.dataset;
  e.backend = backends::create_backend(e.profile, &ctx.profile_file(), access);
  return e;
}

Endpoint open_store(Context& ctx, const std::string& text, const std::string& what, backends::Access access) {
  const auto colon = text.find(':');
  const std::string name = text.substr(0, colon);
  if ((colon != std::string::npos && colon + 1 != text.size()) || name.empty()) {
    throw UsageError(
        fmt::format("{} \"{}\": malformed address: checkpoints are copied between stores, so name "
                    "a profile (PROFILE or PROFILE:)",
                    what, text));
  }
  transfer::Address a;
  a.profile = name;
  Endpoint e{transfer::address_profile(a, ctx.profile_file(), ctx.profile()), "", "", nullptr};
  e.label = e.profile.name() + ":";
  e.backend = backends::create_backend(e.profile, &ctx.profile_file(), access);
  return e;
}

Writers writer_connections(Endpoint& end, int n, Context& ctx) {
  Writers w;
  if (n <= 1) {
    w.pointers.push_back(end.backend.get());
    return w;
  }
  for (int i = 0; i < n; ++i) {
    w.own.push_back(backends::create_backend(end.profile, &ctx.profile_file()));
    w.pointers.push_back(w.own.back().get());
  }
  return w;
}

transfer::CompareResult compare_endpoints(Endpoint& src, Endpoint& dst, const transfer::CompareOptions& options,
                                          Context& ctx) {
  auto src_info = src.backend->dataset_info(src.dataset);
  const int64_t total = options.sample ? *options.sample : (src_info ? src_info->rows : 0);
  ProgressBar bar("check", total, ctx.show_progress());
  auto r = transfer::compare_datasets(*src.backend, src.dataset, *dst.backend, dst.dataset, options, [&](int64_t done) {
    bar.update(done);
    check_interrupted();
  });
  bar.finish();
  return r;
}

namespace {
std::string listed(const transfer::IdList& l) {
  std::vector<std::string> quoted;
  for (const auto& id : l.first) {
    quoted.push_back(nlohmann::json(id).dump());
  }
  return fmt::format("{}{}", fmt::join(quoted, ", "), l.count > static_cast<int64_t>(l.first.size()) ? ", ..." : "");
}
}  // namespace

void print_differences(const transfer::CompareResult& r, const std::string& src, const std::string& dst) {
  std::string out;
  const std::string what = r.sampled ? fmt::format("{} sampled rows", r.compared) : fmt::format("{} rows", r.src_rows);
  if (r.equal()) {
    out = fmt::format("equal: \"{}\" and \"{}\" hold the same {}{}\n", src, dst, what,
                      r.sampled ? "" : fmt::format(" (digest {})", r.src_digest));
  } else {
    out = fmt::format("differ: \"{}\" ({} rows) and \"{}\" ({} rows)\n", src, r.src_rows, dst, r.dst_rows);
    if (!r.spec_difference.empty()) {
      out += fmt::format("  spec: {}\n", r.spec_difference);
    }
    if (!r.metadata_keys_differing.empty()) {
      out += fmt::format("  dataset metadata differs in: {}\n", fmt::join(r.metadata_keys_differing, ", "));
    }
    for (const auto& [name, l] : {std::pair{"missing in destination", &r.missing},
                                  std::pair{"only in destination", &r.extra}, std::pair{"differing", &r.differing}}) {
      if (l->count > 0) {
        out += fmt::format("  {}: {} ({})\n", name, l->count, listed(*l));
      }
    }
    if (r.order_differs) {
      out += "  same rows in another index order\n";
    }
  }
  output::print_text(out);
}

nlohmann::json compare_json(const transfer::CompareResult& r) {
  auto list = [](const transfer::IdList& l) { return nlohmann::json{{"count", l.count}, {"first", l.first}}; };
  return {{"equal", r.equal()},
          {"source_rows", r.src_rows},
          {"destination_rows", r.dst_rows},
          {"compared", r.compared},
          {"sampled", r.sampled},
          {"spec_difference", r.spec_difference.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.spec_difference)},
          {"metadata_differing", r.metadata_keys_differing},
          {"missing", list(r.missing)},
          {"extra", list(r.extra)},
          {"differing", list(r.differing)},
          {"order_differs", r.order_differs},
          {"source_digest", r.sampled ? nlohmann::json(nullptr) : nlohmann::json(r.src_digest)},
          {"destination_digest", r.sampled ? nlohmann::json(nullptr) : nlohmann::json(r.dst_digest)}};
}

}  // namespace vstash::commands
