// Paired comparisons over seeds (`lighthouse compare --seeds`): the interval arithmetic on the
// per-seed loss differences, the time to dense quality of one pair, and the summary report
// (report.json / report.md) over every pair's report (compare.h). Pure functions of numbers
// and records: no training, no files.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/run_log.h"

namespace lighthouse::eval {

// What the Lighthouse->dense run of a pair is given: the dense run's tokens (the same steps and
// batches) or its wall clock (the recipe stretched to the steps that fit, compare.h).
enum class Budget { Tokens, Time };
std::string budget_name(Budget b);
// "tokens" | "time"; sets *error (naming the choices) otherwise.
Budget parse_budget(const std::string& name, std::string* error);

// The two-sided 95% Student-t quantile t_{0.975, df} (df >= 1; exact table to 30, then the
// Cornish-Fisher expansion, within 1e-3 of the exact value).
double t_quantile_975(int64_t df);

// Mean, sample standard deviation and 95% t-interval of paired differences. With one pair the
// standard deviation and the interval are NaN (not defined), never 0.
struct Interval {
  int64_t n = 0;
  double mean = 0, sd = 0, lo = 0, hi = 0, t = 0;
};
Interval paired_interval(const std::vector<double>& deltas);

// The time to dense quality of a pair: the first dense-mode validation of the Lighthouse->dense
// run whose loss is at or below the dense run's last dense-mode validation loss (the same
// held-out tokens), its step and its cumulative step time; speedup = dense wall clock / that
// time. {"reached": false} when no validation reaches it (or either run has none).
nlohmann::json time_to_dense_quality(const RunLog& dense, const RunLog& lighthouse);

// The summary of every pair's report (compare_report, one per seed, in seed order) under a
// budget: per-pair rows, the loss differences' interval and the verdict on it (pass = the
// interval's upper bound <= margin; not judged with one pair), speedups and times to dense
// quality. Adds nothing about how the pairs were run (compare.cpp adds command and device).
nlohmann::json paired_report(const std::vector<nlohmann::json>& pairs,
                             const std::vector<int64_t>& seeds, Budget budget, double margin);
std::string paired_markdown(const nlohmann::json& report);

}  // namespace lighthouse::eval
