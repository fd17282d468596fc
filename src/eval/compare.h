// `lighthouse compare` as a library call: the proof of concept of SPEC.md §9 in one command.
// A dense-from-scratch run and a Lighthouse->dense run of one config (same token budget,
// data order and seed) are trained (or reused), both evaluated with eval (dense mode), and
// compared: report.json, report.md and plots in the output directory (docs/eval.md).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "eval/eval.h"
#include "eval/paired.h"
#include "eval/run_log.h"
#include "train/trainer.h"

namespace lighthouse::eval {

struct CompareOptions {
  std::string config;  // --config ("" = the tiny defaults)
  std::vector<std::pair<std::string, std::string>> overrides;
  std::string out;  // output directory
  // --seeds: one dense / Lighthouse->dense pair per seed (run.seed), in out/seed-<S>/; empty =
  // one pair of the config's seed in out/ itself.
  std::vector<int64_t> seeds;
  // Finished runs to reuse instead of training: empty, one entry per seed, or one entry with
  // "{seed}" in it (replaced by each seed).
  std::vector<std::string> dense_runs, lighthouse_runs;
  Budget budget = Budget::Tokens;  // --budget
  double margin = -1;              // --margin; < 0 = the budget's default (0.02 tokens, 0 time)
  std::string device = "auto";     // evaluation device
  EvalOptions eval;                // ppl and niah are always on
};

struct CompareHooks {
  std::function<void(const std::string&)> line;
  // Console hooks for the training of run "dense" or "lighthouse".
  std::function<train::ConsoleHooks(const std::string&)> train;
  EvalHooks eval;
};

// Targets of the seeds' success criteria.
inline constexpr double kTargetSpeedup = 1.3;     // end-to-end, dense / Lighthouse->dense
inline constexpr double kTargetLossDelta = 0.02;  // final dense-mode loss within 0.02 of dense
inline constexpr double kTimeMargin = 0.0;       // at equal time: Lighthouse->dense not worse
inline constexpr double kTargetRetrievalDelta = -0.02;  // exact match within 2 points of dense
inline constexpr int64_t kTargetRecovery = 2000;  // steps after the switch
inline constexpr size_t kRecoveryWindow = 20;    // steps averaged by the recovery criterion

// The report of two finished runs and their eval results (pure; see docs/eval.md for every
// field's definition).
nlohmann::json compare_report(const RunLog& dense, const RunLog& lighthouse,
                              const nlohmann::json& eval_dense,
                              const nlohmann::json& eval_lighthouse);
// The dense-mode `eval --ppl` loss of an eval JSON, NaN when it has none.
double dense_eval_loss(const nlohmann::json& eval);
// One pair's markdown; pair_only leaves out the title and the plots (the summary has them).
std::string report_markdown(const nlohmann::json& report, bool pair_only = false);

// Per pair (seed): trains or reuses both runs (under --budget time the dense run first, then a
// Lighthouse->dense run stretched to the dense run's wall clock, sized by a short timing probe),
// evaluates them and writes the eval JSONs into the pair's directory. Then out/{report.json,
// report.md, loss_vs_step.png, loss_vs_wall_clock.png, niah.png}: the paired summary
// (paired.h) with every pair's report under "pairs_detail". run.deterministic = true unless
// the overrides set it. Returns the summary. Throws ConfigError / std::runtime_error naming
// the flag or key.
nlohmann::json run_compare(const CompareOptions& o, const CompareHooks& hooks = {});

// Under --budget time: the Lighthouse->dense run's steps for a wall clock of `budget_s`, given
// the dense step time and the Lighthouse step time measured by the probe, with the stage
// split (stage1 / steps) kept as a fraction: {steps, stage1_steps}.
std::pair<int64_t, int64_t> stretched_steps(int64_t steps, int64_t stage1, double budget_s,
                                            double dense_step_s, double lighthouse_step_s);

}  // namespace lighthouse::eval
