// metrics.jsonl reader (run_log.h).
#include "eval/run_log.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace lighthouse::eval {

double RunLog::wall_at(int64_t step) const {
  double w = 0;
  for (const auto& s : steps) {
    if (s.step > step) break;
    w = s.wall_s;
  }
  return w;
}

double RunLog::last_dense_val() const {
  for (auto it = vals.rbegin(); it != vals.rend(); ++it)
    if (it->mode == "dense") return it->loss;
  return std::numeric_limits<double>::quiet_NaN();
}

namespace {

// One record of metrics.jsonl into `log` (nlohmann::json::exception on a wrong type).
void read_record(const nlohmann::json& j, RunLog& log) {
  const std::string type = j["type"].get<std::string>();
  if (type == "step") {
    StepRecord r;
    r.step = j["step"].get<int64_t>();
    r.loss = j.value("loss", std::nan(""));
    r.step_time_s = j.value("step_time_s", 0.0);
    r.tokens = j.value("tokens", int64_t{0});
    r.mode = j.value("attention", std::string("dense"));
    log.steps.push_back(r);
  } else if (type == "val") {
    ValRecord r;
    r.step = j["step"].get<int64_t>();
    r.loss = j.contains("loss") ? j["loss"].get<double>() : j.value("val_loss", std::nan(""));
    r.mode = j.contains("mode") ? j["mode"].get<std::string>()
                                : j.value("attention", std::string("dense"));
    r.tokens = j.value("tokens", int64_t{0});
    log.vals.push_back(r);
  } else if (type == "event" && j.value("event", std::string()) == "attention_switch" &&
             j.value("attention", std::string()) == "dense") {
    log.switch_step = j["step"].get<int64_t>();
  }
}

}  // namespace

RunLog read_run_log(const std::string& run_dir) {
  RunLog log;
  log.dir = run_dir;
  std::string d = run_dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  log.name = d.substr(d.find_last_of('/') == std::string::npos ? 0 : d.find_last_of('/') + 1);
  const std::string path = run_dir + "/metrics.jsonl";
  std::ifstream in(path);
  if (!in) throw std::runtime_error(run_dir + ": no metrics.jsonl (not a run directory)");
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("type") || !j.contains("step")) continue;  // partial line
    try {
      read_record(j, log);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(path + ":" + std::to_string(n) +
                               ": a field has the wrong type (" + e.what() + ")");
    }
  }
  if (log.steps.empty()) throw std::runtime_error(path + ": no step records");
  std::stable_sort(log.steps.begin(), log.steps.end(),
                   [](const StepRecord& a, const StepRecord& b) { return a.step < b.step; });
  double w = 0;
  for (auto& s : log.steps) s.wall_s = (w += s.step_time_s);
  return log;
}

}  // namespace lighthouse::eval
