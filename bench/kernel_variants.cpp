// `lighthouse_kernel_variants`: the tuning harness of the data-movement kernels (see
// bench/kernel_variants.h). Prints one row per variant (registers, spill bytes, blocks per SM,
// bitwise equality with the shipped form, median ms, ratio to the shipped form, GB/s and the
// share of the copy rate measured in the same run) and optionally writes them as JSON. Exits 1
// when a variant's outputs differ from the shipped form's, 2 on bad arguments or a CUDA error.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>

#include "bench/kernel_variants.h"

namespace {

using lighthouse::bench::VariantOptions;
using lighthouse::bench::VariantReport;

void print(const VariantReport& rep) {
  const double copy_gbps = rep.copy_bytes / (rep.copy_ms * 1e6);
  std::printf("%s on %s, N = %lld: %.3f GB moved; copy of one [N, H, D] %.3f ms (%.0f GB/s)\n",
              rep.stage.c_str(), rep.device.c_str(), static_cast<long long>(rep.n), rep.bytes / 1e9,
              rep.copy_ms, copy_gbps);
  std::printf("%-7s %-38s %5s %6s %9s %8s %9s %7s %7s %7s\n", "variant", "form", "regs", "spill",
              "blocks/SM", "bitwise", "ms", "x base", "GB/s", "% copy");
  const double base = rep.rows.empty() ? 0.0 : rep.rows.front().ms;
  for (const auto& r : rep.rows) {
    const double gbps = rep.bytes / (r.ms * 1e6);
    std::printf("%-7s %-38s %5d %6d %9d %8s %9.4f %7.3f %7.0f %7.1f\n", r.name.c_str(),
                r.form.c_str(), r.registers, r.local_bytes, r.blocks_per_sm,
                r.bitwise ? "yes" : "NO", r.ms, base / r.ms, gbps, 100.0 * gbps / copy_gbps);
  }
}

nlohmann::json to_json(const VariantReport& rep, const VariantOptions& opt) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : rep.rows)
    rows.push_back({{"name", r.name},
                    {"form", r.form},
                    {"registers", r.registers},
                    {"local_bytes", r.local_bytes},
                    {"blocks_per_sm", r.blocks_per_sm},
                    {"bitwise", r.bitwise},
                    {"ms", r.ms},
                    {"round_ms", r.round_ms}});
  return {{"stage", rep.stage},     {"device", rep.device},   {"n", rep.n},
          {"topk", opt.topk},       {"tile_topk", opt.tile_topk},
          {"heads", opt.heads},     {"dim", opt.dim},         {"levels", opt.levels},
          {"pool", opt.pool},       {"rounds", opt.rounds},   {"calls", opt.calls},
          {"bytes", rep.bytes},     {"copy_ms", rep.copy_ms}, {"copy_bytes", rep.copy_bytes},
          {"variants", rows}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lighthouse_kernel_variants: variants of a data-movement kernel against the shipped "
               "form (bitwise checked, timed in alternation)"};
  VariantOptions opt;
  std::string stage = "pool_score", json;
  app.add_option("--stage", stage, "kernel to vary")
      ->check(CLI::IsMember({"pool_score", "scatter", "gather_backward"}));
  app.add_option("--n", opt.n, "sequence length N")->check(CLI::PositiveNumber);
  app.add_option("--heads", opt.heads, "heads H")->check(CLI::PositiveNumber);
  app.add_option("--dim", opt.dim, "head dim D (a multiple of 8, <= 256)")
      ->check(CLI::PositiveNumber);
  app.add_option("--levels", opt.levels, "pyramid levels L (>= 2)")->check(CLI::Range(2, 16));
  app.add_option("--pool", opt.pool, "pooling factor p (a power of two)")->check(CLI::Range(2, 64));
  app.add_option("--rounds", opt.rounds, "alternation rounds")->check(CLI::PositiveNumber);
  app.add_option("--calls", opt.calls, "timed calls per variant and round")
      ->check(CLI::PositiveNumber);
  app.add_option("--topk", opt.topk, "per-level budget k of the plan (scatter, gather backward)")
      ->check(CLI::PositiveNumber);
  app.add_option("--tile-topk", opt.tile_topk, "per-tile budget m of that plan")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", opt.seed, "input seed");
  app.add_option("--json", json, "also write the rows to this JSON file");
  CLI11_PARSE(app, argc, argv);
  try {
    namespace lb = lighthouse::bench;
    const VariantReport rep = stage == "pool_score" ? lb::run_pool_score_variants(opt)
                              : stage == "scatter"  ? lb::run_scatter_variants(opt)
                                                    : lb::run_gather_backward_variants(opt);
    print(rep);
    if (!json.empty()) {
      std::ofstream f(json);
      f << to_json(rep, opt).dump(2) << "\n";
      f.close();
      if (!f) throw std::runtime_error("--json: could not write " + json);
    }
    for (const auto& r : rep.rows)
      if (!r.bitwise) {
        std::fprintf(stderr, "variant %s: outputs differ from the shipped form's\n",
                     r.name.c_str());
        return 1;
      }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lighthouse_kernel_variants: %s\n", e.what());
    return 2;
  }
  return 0;
}
