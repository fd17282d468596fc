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
#include "eval/run_log.h"
#include "train/trainer.h"

namespace lighthouse::eval {

struct CompareOptions {
  std::string config;  // --config ("" = the tiny defaults)
  std::vector<std::pair<std::string, std::string>> overrides;
  std::string out;                        // output directory
  std::string dense_run, lighthouse_run;  // reuse these finished runs instead of training
  std::string device = "auto";            // evaluation device
  EvalOptions eval;                       // ppl and niah are always on
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
inline constexpr int64_t kTargetRecovery = 2000;  // steps after the switch
inline constexpr size_t kRecoveryWindow = 20;    // steps averaged by the recovery criterion

// The report of two finished runs and their eval results (pure; see docs/eval.md for every
// field's definition).
nlohmann::json compare_report(const RunLog& dense, const RunLog& lighthouse,
                              const nlohmann::json& eval_dense,
                              const nlohmann::json& eval_lighthouse);
std::string report_markdown(const nlohmann::json& report);

// Trains or reuses both runs, evaluates them and writes out/{report.json, report.md,
// loss_vs_step.png, loss_vs_wall_clock.png, niah.png, eval-dense.json, eval-lighthouse.json}.
// Returns the report. Throws ConfigError / std::runtime_error naming the flag or key.
nlohmann::json run_compare(const CompareOptions& o, const CompareHooks& hooks = {});

}  // namespace lighthouse::eval
