// SPDX-License-Identifier: MIT
// `vstash insert`: one vector with an id and metadata; creates the dataset if needed.
#include <fmt/format.h>
#include <memory>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "src/errors.hpp"
#include "src/output.hpp"

namespace vstash::commands {

struct InsertOptions {
  std::string id;
  std::string vector;
  std::string vector_file;
  std::string metadata;
  std::string label;
  bool upsert = false;
};

namespace {

void run_insert(const InsertOptions& opt, Context& ctx) {
  if (opt.vector.empty() == opt.vector_file.empty()) {
    throw UsageError("insert: give exactly one of --vector or --vector-file");
  }
  const auto values = opt.vector.empty() ? read_vector_file(opt.vector_file) : parse_vector_arg(opt.vector, "--vector");
  const nlohmann::json metadata =
      opt.metadata.empty() ? nlohmann::json() : parse_object_arg(opt.metadata, "--metadata");
  const std::string dataset = ctx.dataset();
  auto& backend = ctx.backend();

  backends::DatasetSpec spec;
  if (auto info = backend.dataset_info(dataset)) {
    spec = info->spec;
  } else {
    spec.name = dataset;
    spec.row_shape = {static_cast<int64_t>(values.size())};
    spec.metric = backends::parse_metric(ctx.profile().get_string("metric", "cosine"));
    if (!opt.label.empty()) {
      spec.label_dtype = DType::f64;
    }
    backend.create_dataset(spec);
    ctx.note(fmt::format("created dataset \"{}\" (dimension {}, metric {})", dataset, values.size(),
                         backends::metric_name(spec.metric)));
  }
  check_dimension(spec, values.size(), opt.vector.empty() ? opt.vector_file : "--vector");
  if (!opt.upsert && !backend.fetch(dataset, {opt.id}).ids.empty()) {
    throw ConflictError(
        fmt::format("dataset \"{}\": id \"{}\" already exists (pass --upsert to replace it)", dataset, opt.id));
  }
  backends::RowBatch batch;
  batch.ids = {opt.id};
  Shape shape{1};
  shape.insert(shape.end(), spec.row_shape.begin(), spec.row_shape.end());
  batch.data = make_array(spec.dtype, shape, values);
  batch.metadata = {metadata};
  if (spec.label_dtype) {
    if (opt.label.empty()) {
      throw UsageError(fmt::format("dataset \"{}\" has labels: pass --label", dataset));
    }
    const auto lj = parse_json_arg(opt.label, "--label");
    std::vector<double> lv = lj.is_array() ? parse_vector_arg(opt.label, "--label") : std::vector<double>{};
    if (!lj.is_array()) {
      if (!lj.is_number() && !lj.is_boolean()) {
        throw UsageError("--label: expected a number or a JSON array of numbers");
      }
      lv.push_back(lj.get<double>());
    }
    Shape lshape{1};
    lshape.insert(lshape.end(), spec.label_shape.begin(), spec.label_shape.end());
    batch.labels = make_array(*spec.label_dtype, lshape, lv);
  }
  backend.write_rows(dataset, batch);
  if (ctx.json()) {
    output::print_json({{"dataset", dataset}, {"id", opt.id}, {"upsert", opt.upsert}});
  } else {
    output::print_text(fmt::format("inserted \"{}\" into \"{}\"\n", opt.id, dataset));
  }
}

}  // namespace

void register_insert(CLI::App& parent, Context& ctx) {
  auto opt = std::make_shared<InsertOptions>();
  auto* sub = parent.add_subcommand("insert", "Insert one vector (the dataset is created if missing)");
  sub->add_option("--id", opt->id, "Row id")->required();
  sub->add_option("--vector", opt->vector, "Vector as JSON, e.g. '[0.1,0.2]', or @FILE.json");
  sub->add_option("--vector-file", opt->vector_file, "Vector from an NPY/HDF5 file");
  sub->add_option("--metadata", opt->metadata, "Metadata JSON object or @FILE.json");
  sub->add_option("--label", opt->label, "Label (number or JSON array) for datasets with labels");
  sub->add_flag("--upsert", opt->upsert, "Replace the row if the id exists (else exit 5)");
  sub->callback([opt, &ctx] { run_insert(*opt, ctx); });
}

}  // namespace vstash::commands
