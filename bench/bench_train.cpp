// `lighthouse bench train --config FILE [--steps N] [--warmup W] [--set key=value ...]`:
// end-to-end training throughput of one config, dense attention and then Lighthouse in the
// non-dense layers, in the same process on the same data. Warm-up steps are excluded; each
// mode reports the median step time, tokens/s, model TFLOP/s and peak memory, its step against
// the compute lower bound (bench_bound.h, rates measured in this run), the two-stage wall-clock
// speedups, and with --profile-steps the device kernels by category (bench_profile.h).
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "bench/bench_bound.h"
#include "bench/bench_profile.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "train/device.h"
#include "train/trainer.h"

namespace lighthouse::cli {
namespace {

struct BenchTrainArgs {
  ConfigFlags config;
  std::string json;
  int64_t steps = 5, warmup = 2;
  int64_t profile_steps = 0;  // steps per mode under the kernel profiler, after the timed ones
  int profile_top = 12;
};

struct ModeResult {
  std::string mode;
  double median_step_s = 0, tokens_per_s = 0;
  int64_t peak_memory_bytes = 0;
  std::vector<double> step_s, losses;
  model::StepFlops flops;            // per step
  double model_tflops = 0, bound_s = 0;
  ProfileSummary profile;
};

// The paper's splits of a 16k-step run (Lighthouse steps, then dense), and the config's own.
std::vector<std::pair<int64_t, int64_t>> stage_splits(const train::RunConfig& c) {
  std::vector<std::pair<int64_t, int64_t>> s = {{16000, 10000}, {16000, 11000}, {16000, 12000}};
  const std::pair<int64_t, int64_t> own = {c.train.steps, c.train.stage1_steps};
  if (std::find(s.begin(), s.end(), own) == s.end() && own.second > 0) s.push_back(own);
  return s;
}

int run_bench_train(const BenchTrainArgs& a) {
  if (!a.json.empty()) check_output_file("--json", a.json);
  train::Launch launch{a.config.file, overrides(a.config)};
  // Only as much built-in data as the benchmark reads; no validation, no checkpoints.
  const train::RunConfig probe =
      train::resolve_keys(train::RunConfig{}, launch.config_file, launch.overrides);
  if (a.profile_steps > 0 && !train::resolve_device(probe).is_cuda())
    throw CLI::ValidationError("--profile-steps",
                               "profiles device kernels: needs run.device = cuda, got a CPU run");
  const int64_t sequences =
      2 * (a.steps + a.warmup + a.profile_steps) * probe.train.batch_size * probe.train.grad_accum;
  if (probe.data.source == "builtin")
    launch.overrides.emplace_back(
        "data.builtin_docs",
        std::to_string(std::min(probe.data.builtin_docs, sequences * 3 / 2 + 4)));
  launch.overrides.emplace_back("data.val_fraction", "0");
  launch.overrides.emplace_back("val.every", "0");

  auto s = train::open_session(launch);
  const auto& c = s->cfg;
  const int64_t tokens_per_step = c.train.batch_size * c.train.grad_accum * c.train.context;
  std::cout << "bench train: " << (a.config.file.empty() ? "the tiny config (defaults)" : a.config.file)
            << " on " << s->device.str() << (s->bf16 ? " (bf16 autocast)" : " (fp32)") << ", "
            << tokens_per_step << " tokens/step, " << a.warmup << " warm-up + " << a.steps
            << " timed steps per mode\n";

  const DevicePeaks peaks =
      measure_peaks(s->device, s->bf16 ? at::kBFloat16 : at::kFloat, c.model.n_heads,
                    c.model.head_dim, c.model.lighthouse.backend);
  std::cout << "measured here: matrix product " << std::fixed << std::setprecision(0)
            << peaks.gemm_tflops << " TFLOP/s, causal SDPA fwd+bwd " << peaks.attention_tflops
            << " TFLOP/s\n";

  Progress progress("bench train", 2 * (a.warmup + a.steps + a.profile_steps), "steps");
  int64_t done = 0;
  std::vector<ModeResult> results;
  for (const auto mode : {model::AttentionMode::Dense, model::AttentionMode::Lighthouse}) {
    ModeResult r;
    r.mode = train::mode_name(mode);
    for (int64_t i = 0; i < a.warmup + a.steps; ++i) {
      const auto st = train::train_step(*s, mode);
      progress.update(++done, r.mode + " loss " + std::to_string(st.loss));
      if (i < a.warmup) continue;
      r.step_s.push_back(st.step_time_s);
      r.losses.push_back(st.loss);
      r.peak_memory_bytes = std::max(r.peak_memory_bytes, st.peak_memory_bytes);
    }
    auto sorted = r.step_s;
    std::sort(sorted.begin(), sorted.end());
    r.median_step_s = sorted[sorted.size() / 2];
    r.tokens_per_s = static_cast<double>(tokens_per_step) / r.median_step_s;
    const double sequences = static_cast<double>(c.train.batch_size * c.train.grad_accum);
    const model::StepFlops one = model::step_flops(c.model, c.train.context, mode);
    r.flops = {one.gemm * sequences, one.attention * sequences, one.scorer * sequences};
    r.model_tflops = r.flops.total() / r.median_step_s * 1e-12;
    r.bound_s = lower_bound_s(r.flops, peaks);
    if (a.profile_steps > 0)
      r.profile = profile_steps(
          [&] {
            const auto st = train::train_step(*s, mode);
            progress.update(++done, r.mode + " (profiled) loss " + std::to_string(st.loss));
          },
          a.profile_steps);
    results.push_back(r);
  }

  const double ratio = results[1].tokens_per_s / results[0].tokens_per_s;
  std::cout << std::left << std::setw(12) << "mode" << std::right << std::setw(12) << "step (ms)"
            << std::setw(12) << "tokens/s" << std::setw(14) << "model TFLOP/s" << std::setw(13)
            << "bound (ms)" << std::setw(14) << "step / bound" << std::setw(16)
            << "peak mem (MiB)" << "\n";
  for (const auto& r : results)
    std::cout << std::left << std::setw(12) << r.mode << std::right << std::fixed
              << std::setprecision(1) << std::setw(12) << r.median_step_s * 1e3 << std::setw(12)
              << std::setprecision(0) << r.tokens_per_s << std::setw(14) << std::setprecision(1)
              << r.model_tflops << std::setw(13) << r.bound_s * 1e3 << std::setw(14)
              << std::setprecision(2) << r.median_step_s / r.bound_s << std::setw(16)
              << std::setprecision(1) << r.peak_memory_bytes / 1048576.0 << "\n";
  std::cout << "lighthouse / dense tokens/s: " << std::setprecision(2) << ratio << "x"
            << (s->device.is_cuda() ? "" : "  (peak memory on CPU is the process peak RSS)")
            << "\n";
  // What the ratio can reach: both steps at their bounds, and this dense step against a
  // Lighthouse step at its bound (the memory-bound work outside the bound then costs nothing).
  const double bounds_ratio = results[0].bound_s / results[1].bound_s;
  const double dense_over_lh_bound = results[0].median_step_s / results[1].bound_s;
  std::cout << "ceilings of that ratio: both steps at their bounds " << std::setprecision(2)
            << bounds_ratio << "x; this dense step over the lighthouse bound "
            << dense_over_lh_bound << "x\n";
  std::cout << "model TFLOP/s: FLOPs of model/flops.h (no recomputation) / step time; bound: those"
               " FLOPs at the rates measured above\n";
  std::cout << "two-stage wall clock vs dense from scratch (these step times):";
  for (const auto& [total, stage1] : stage_splits(c))
    std::cout << "  " << stage1 << "+" << total - stage1 << ": " << std::setprecision(2)
              << two_stage_speedup(total, stage1, results[0].median_step_s,
                                   results[1].median_step_s)
              << "x";
  std::cout << "\n";
  if (a.profile_steps > 0)
    for (const auto& r : results) print_profile(r.mode, r.median_step_s * 1e3, r.profile, a.profile_top);

  if (!a.json.empty()) {
    nlohmann::json j;
    j["config"] = train::to_json(c);
    j["device"] = s->device.str();
    j["bf16"] = s->bf16;
    j["tokens_per_step"] = tokens_per_step;
    j["warmup_steps"] = a.warmup;
    j["timed_steps"] = a.steps;
    for (const auto& r : results)
      j["modes"][r.mode] = {{"median_step_s", r.median_step_s},
                            {"tokens_per_s", r.tokens_per_s},
                            {"peak_memory_bytes", r.peak_memory_bytes},
                            {"step_s", r.step_s},
                            {"losses", r.losses},
                            {"flops_per_step",
                             {{"gemm", r.flops.gemm},
                              {"attention", r.flops.attention},
                              {"scorer", r.flops.scorer}}},
                            {"model_tflops", r.model_tflops},
                            {"lower_bound_s", r.bound_s}};
    if (a.profile_steps > 0)
      for (const auto& r : results) j["modes"][r.mode]["profile"] = profile_json(r.profile, 40);
    j["measured_peaks_tflops"] = {{"gemm", peaks.gemm_tflops},
                                  {"attention_fwd_bwd", peaks.attention_tflops}};
    j["lighthouse_over_dense"] = ratio;
    j["ceiling_bounds_ratio"] = bounds_ratio;
    j["ceiling_dense_over_lighthouse_bound"] = dense_over_lh_bound;
    for (const auto& [total, stage1] : stage_splits(c))
      j["two_stage_speedup"][std::to_string(stage1) + "+" + std::to_string(total - stage1)] =
          two_stage_speedup(total, stage1, results[0].median_step_s, results[1].median_step_s);
    write_output_file("--json", a.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

void add_bench_train(CLI::App& bench) {
  auto a = std::make_shared<BenchTrainArgs>();
  CLI::App* sub = bench.add_subcommand(
      "train", "End-to-end training throughput of a config: dense vs Lighthouse, same process");
  sub->add_option("--steps", a->steps, "timed steps per mode")->check(positive_int());
  sub->add_option("--warmup", a->warmup, "warm-up steps per mode (not timed)")
      ->check(non_negative_int());
  add_config_flags(*sub, a->config, "TOML run config (default: the tiny config)",
                   "override a config key (repeatable)", /*key_flags=*/true);
  sub->add_option("--json", a->json, "write results as JSON to this file");
  sub->add_option("--profile-steps", a->profile_steps,
                  "after the timed steps, profile this many steps per mode: device kernels by "
                  "category and the costliest kernels (CUDA)")
      ->check(non_negative_int());
  sub->add_option("--profile-top", a->profile_top, "kernels listed per mode by --profile-steps")
      ->check(positive_int());
  sub->callback([a] {
    const int rc = run_bench_train(*a);
    if (rc != 0) throw CLI::RuntimeError(rc);
    throw CLI::Success();  // done: the parent `bench` (op benchmark) must not run as well
  });
}

}  // namespace lighthouse::cli
