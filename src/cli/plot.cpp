// `lighthouse plot RUN [RUN ...] --out F [--x step|wall]` (loss curves), `lighthouse plot
// --niah EVAL.json [EVAL.json ...] --out F` (NIAH heatmaps side by side) and `lighthouse plot
// --bench BENCH.json --out F` (latency vs N): the figures of src/eval/figures.h, drawn by
// PLplot into .png or .svg.
#include "plot/plot.h"

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "eval/figures.h"

namespace lighthouse::cli {
namespace {

struct PlotArgs {
  std::vector<std::string> runs, niah;
  std::string bench, out, x = "step";
};

nlohmann::json read_json(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(flag + ": cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw std::runtime_error(flag + ": " + path + " is not JSON");
  return j;
}

int run_plot(const PlotArgs& a) {
  const int kinds = !a.runs.empty() + !a.niah.empty() + !a.bench.empty();
  if (kinds != 1)
    throw std::invalid_argument(
        "plot: give run directories, --niah EVAL.json ... or --bench BENCH.json (one kind)");
  if (!a.runs.empty()) {
    std::vector<eval::RunLog> logs;
    for (const auto& r : a.runs) logs.push_back(eval::read_run_log(r));
    plot::write_lines(a.out, {eval::loss_panel(logs, a.x == "wall" ? eval::LossAxis::WallClock
                                                                   : eval::LossAxis::Step)});
  } else if (!a.niah.empty()) {
    std::vector<plot::HeatmapPanel> panels;
    for (const auto& f : a.niah) {
      const auto j = read_json(f, "--niah");
      if (!j.contains("niah"))
        throw std::runtime_error("--niah: " + f + " has no \"niah\" results");
      panels.push_back(eval::niah_panel(j["niah"], j.value("/model/source"_json_pointer, f)));
    }
    plot::write_heatmaps(a.out, panels);
  } else {
    plot::write_lines(a.out, {eval::latency_panel(read_json(a.bench, "--bench"))}, 900, 640);
  }
  std::cout << "wrote " << a.out << "\n";
  return 0;
}

}  // namespace

void add_plot(CLI::App& app) {
  auto a = std::make_shared<PlotArgs>();
  CLI::App* sub = app.add_subcommand(
      "plot",
      "Plot loss curves of runs, NIAH heatmaps of eval results, or latency vs N of a "
      "bench result (PNG or SVG, by the --out extension)");
  sub->add_option("runs", a->runs, "run directories (loss curves)")->check(CLI::ExistingDirectory);
  sub->add_option("--niah", a->niah, "eval JSON files (`lighthouse eval --niah --json`)")
      ->check(CLI::ExistingFile);
  sub->add_option("--bench", a->bench, "a `lighthouse bench --device cuda --json` result")
      ->check(CLI::ExistingFile);
  sub->add_option("--x", a->x, "loss curves against step or wall (clock)")
      ->check(CLI::IsMember({"step", "wall"}));
  sub->add_option("--out", a->out, "output image (.png or .svg)")->required();
  sub->callback([a] {
    const int rc = run_plot(*a);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace lighthouse::cli
