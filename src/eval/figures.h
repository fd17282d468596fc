// The project's figures, built from its own records and drawn through the one plotting path
// (src/plot): loss curves of runs (dense-mode solid, Lighthouse-mode dashed), NIAH heatmaps
// of eval results, and latency vs sequence length of a `lighthouse bench --device cuda` JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/run_log.h"
#include "plot/plot.h"

namespace lighthouse::eval {

enum class LossAxis { Step, WallClock };

// Training loss (thin) and validation losses (markers) of each run, one colour per run;
// Lighthouse-mode values dashed, dense-mode solid; a grey line at each run's switch.
plot::LinePanel loss_panel(const std::vector<RunLog>& runs, LossAxis x);

// Accuracy by context (rows) and depth (columns) of an eval JSON's "niah" object.
plot::HeatmapPanel niah_panel(const nlohmann::json& niah, const std::string& title);

// Median latency vs N of every case of a bench JSON (log-log, speedups annotated).
plot::LinePanel latency_panel(const nlohmann::json& bench);

}  // namespace lighthouse::eval
