// One pair's report: the numbers of compare_report and their markdown (compare.h).
#include <array>
#include <cmath>
#include <map>
#include <sstream>
#include <vector>

#include "eval/compare.h"
#include "eval/report_format.h"

namespace lighthouse::eval {
namespace {

using nlohmann::json;
using report::fmt;
using report::number_or_null;



double niah_mean(const json& ev) {
  return ev.contains("niah") ? ev["niah"]["mean"].get<double>() : std::nan("");
}

// The NIAH score of a random guess (the built-in generator's one digit in ten), or null for a
// prompt file's exact-match scoring, which has none.
json niah_chance(const json& ev) {
  if (!ev.contains("niah") || !ev["niah"].contains("chance")) return nullptr;
  return ev["niah"]["chance"];
}

json run_summary(const RunLog& r, const json& ev) {
  return {{"dir", r.dir},
          {"steps", r.steps.back().step},
          {"tokens", r.steps.back().tokens},
          {"switch_step", r.switch_step >= 0 ? json(r.switch_step) : json(nullptr)},
          {"last_train_loss", r.steps.back().loss},
          {"last_val_dense", number_or_null(r.last_dense_val())},
          {"eval", ev}};
}


// Stage 1 in dense mode: the Lighthouse run's last dense-mode validation at or before the
// switch next to the dense run's at the same step (same held-out tokens), or null.
json stage1_dense_val(const RunLog& dense, const RunLog& lh) {
  if (lh.switch_step <= 0) return nullptr;
  const ValRecord* last = nullptr;
  for (const auto& v : lh.vals)
    if (v.mode == "dense" && v.step <= lh.switch_step) last = &v;
  if (!last) return nullptr;
  for (const auto& v : dense.vals)
    if (v.mode == "dense" && v.step == last->step)
      return {{"step", last->step}, {"dense", v.loss}, {"lighthouse", last->loss},
              {"gap", last->loss - v.loss}};
  return nullptr;
}

std::string time_to_quality_line(const json& q) {
  if (!q.is_object()) return "";
  if (!q.value("reached", false))
    return "\n- time to dense quality: not reached (no dense-mode validation of the "
           "Lighthouse->dense run at or below the dense run's last, " +
           (q["target_loss"].is_number() ? fmt("%.4f", q["target_loss"].get<double>())
                                         : std::string("n/a")) +
           ")";
  return "\n- time to dense quality: step " + q["step"].dump() + " at " +
         fmt("%.1f", q["time_s"].get<double>()) + " s (" +
         (q["speedup"].is_number() ? fmt("%.2fx", q["speedup"].get<double>()) : "n/a") +
         " the dense run's wall clock)";
}

std::string stage1_line(const json& v) {
  if (!v.is_object()) return "";
  return "\n- stage 1 in dense mode (validation at step " + v["step"].dump() + "): " +
         fmt("%.4f", v["lighthouse"].get<double>()) + " vs dense " +
         fmt("%.4f", v["dense"].get<double>()) + " (" + fmt("%+.4f", v["gap"].get<double>()) + ")";
}

}  // namespace

double dense_eval_loss(const json& ev) {
  if (!ev.contains("ppl") || !ev["ppl"].contains("dense")) return std::nan("");
  return ev["ppl"]["dense"]["loss"].get<double>();
}


json compare_report(const RunLog& dense, const RunLog& lh, const json& eval_dense,
                    const json& eval_lh) {
  json r;
  const double wd = dense.wall_clock_s(), wl = lh.wall_clock_s();
  r["wall_clock_s"] = {{"dense", wd}, {"lighthouse", wl}};
  const double speedup = wl > 0 ? wd / wl : std::nan("");
  r["speedup"] = number_or_null(speedup);
  const double fd = dense_eval_loss(eval_dense), fl = dense_eval_loss(eval_lh);
  r["final_loss"] = {{"dense", number_or_null(fd)}, {"lighthouse", number_or_null(fl)}};
  const double delta = fl - fd;
  r["loss_delta"] = number_or_null(delta);

  // The switch: the training loss of the first dense step minus that of the last Lighthouse
  // step. Recovery: the first stage-2 step s (1 = the first) from which the training loss
  // averaged over kRecoveryWindow steps [s, s + w) is at or below the dense-from-scratch run's
  // average over the same steps (same batches: same data order and seed); w is the window or
  // the number of stage-2 steps if fewer, and the window must fit in the run. One easy batch
  // where the two runs happen to cross is not a recovery.
  std::map<int64_t, double> dense_loss, lh_loss;
  for (const auto& s : dense.steps) dense_loss[s.step] = s.loss;
  for (const auto& s : lh.steps) lh_loss[s.step] = s.loss;
  const int64_t sw = lh.switch_step;
  json spike = nullptr, excess = nullptr, recovery = nullptr;
  if (sw > 0 && lh_loss.count(sw) && lh_loss.count(sw + 1)) {
    spike = lh_loss[sw + 1] - lh_loss[sw];
    // The jump includes the batch's own difficulty; the excess over the dense run on the same
    // batch does not.
    if (dense_loss.count(sw + 1)) excess = lh_loss[sw + 1] - dense_loss[sw + 1];
    std::vector<std::array<double, 3>> after;  // {step, Lighthouse->dense loss, dense loss}
    for (const auto& [step, loss] : lh_loss)
      if (step > sw && dense_loss.count(step))
        after.push_back({static_cast<double>(step), loss, dense_loss[step]});
    const size_t w = std::min<size_t>(kRecoveryWindow, after.size());
    for (size_t i = 0; w > 0 && i + w <= after.size(); ++i) {
      double lh_sum = 0, dense_sum = 0;
      for (size_t j = i; j < i + w; ++j) lh_sum += after[j][1], dense_sum += after[j][2];
      if (lh_sum <= dense_sum) {
        recovery = static_cast<int64_t>(after[i][0]) - sw;
        break;
      }
    }
  }
  r["switch_step"] = sw >= 0 ? json(sw) : json(nullptr);
  r["switch_spike"] = spike;
  r["switch_excess"] = excess;
  r["stage1_dense_val"] = stage1_dense_val(dense, lh);
  r["time_to_dense_quality"] = time_to_dense_quality(dense, lh);
  r["recovery_steps"] = recovery;
  r["niah_chance"] = niah_chance(eval_dense);
  r["niah_mean"] = {{"dense", number_or_null(niah_mean(eval_dense))},
                    {"lighthouse", number_or_null(niah_mean(eval_lh))}};
  r["tokens"] = {{"dense", dense.steps.back().tokens}, {"lighthouse", lh.steps.back().tokens}};
  r["criteria"] =
      json::array({{{"name", "end-to-end speedup (dense wall clock / Lighthouse->dense)"},
                    {"target", kTargetSpeedup},
                    {"op", ">="},
                    {"value", number_or_null(speedup)},
                    {"pass", std::isfinite(speedup) && speedup >= kTargetSpeedup}},
                   {{"name", "final dense-mode loss, Lighthouse->dense minus dense"},
                    {"target", kTargetLossDelta},
                    {"op", "<="},
                    {"value", number_or_null(delta)},
                    {"pass", std::isfinite(delta) && delta <= kTargetLossDelta}},
                   {{"name", "recovery after the switch (steps)"},
                    {"target", kTargetRecovery},
                    {"op", "<="},
                    {"value", recovery},
                    {"pass", recovery.is_number() && recovery.get<int64_t>() <= kTargetRecovery}}});
  r["runs"] = {{"dense", run_summary(dense, eval_dense)}, {"lighthouse", run_summary(lh, eval_lh)}};
  return r;
}

std::string report_markdown(const json& r, bool pair_only) {
  std::ostringstream md;
  const auto num = [](const json& v, const char* f) {
    return v.is_number() ? fmt(f, v.get<double>()) : std::string("n/a");
  };
  if (!pair_only) md << "# Dense from scratch vs Lighthouse -> dense\n\n";
  if (r.contains("date")) md << r["date"].get<std::string>() << ", ";
  if (r.contains("device")) md << r["device"].get<std::string>() << ". ";
  if (r.contains("command")) md << "`" << r["command"].get<std::string>() << "`\n\n";
  md << "Every loss below is **dense mode** (a Lighthouse-mode loss reads future tokens through "
        "the tile's selection and measures nothing about quality). Final loss: `lighthouse "
        "eval --ppl` on the run's validation split.\n\n";
  md << "| | dense from scratch | Lighthouse -> dense |\n|---|---|---|\n";
  md << "| final loss (dense mode) | " << num(r["final_loss"]["dense"], "%.4f") << " | "
     << num(r["final_loss"]["lighthouse"], "%.4f") << " |\n";
  md << "| NIAH mean (dense mode"
     << (r.contains("niah_chance") && r["niah_chance"].is_number()
             ? ", chance " + num(r["niah_chance"], "%.2f")
             : std::string())
     << ") | " << num(r["niah_mean"]["dense"], "%.3f") << " | "
     << num(r["niah_mean"]["lighthouse"], "%.3f") << " |\n";
  md << "| training wall clock (s) | " << num(r["wall_clock_s"]["dense"], "%.1f") << " | "
     << num(r["wall_clock_s"]["lighthouse"], "%.1f") << " |\n";
  md << "| training tokens | " << r["tokens"]["dense"].dump() << " | "
     << r["tokens"]["lighthouse"].dump() << " |\n\n";
  md << "- speedup (dense / Lighthouse->dense wall clock): " << num(r["speedup"], "%.3fx")
     << "\n- loss delta (Lighthouse->dense minus dense): " << num(r["loss_delta"], "%+.4f")
     << "\n- switch at step " << (r["switch_step"].is_null() ? "n/a" : r["switch_step"].dump())
     << ": training loss jumps by " << num(r["switch_spike"], "%.3f") << " nats ("
     << num(r["switch_excess"], "%+.3f") << " over the dense run on the same batch)"
     << "\n- recovery: "
     << (r["recovery_steps"].is_null()
             ? std::string("the dense-mode loss did not come back to the dense curve")
             : r["recovery_steps"].dump() + " steps after the switch")
     << stage1_line(r["stage1_dense_val"])
     << time_to_quality_line(r["time_to_dense_quality"])
     << "\n\n" << (pair_only ? "## Criteria of this pair" : "## Success criteria")
     << "\n\n| criterion | target | value | pass |\n|---|---|---|---|\n";
  for (const auto& c : r["criteria"])
    md << "| " << c["name"].get<std::string>() << " | " << c["op"].get<std::string>() << " "
       << c["target"].dump() << " | " << (c["value"].is_null() ? "n/a" : num(c["value"], "%.4g"))
       << " | " << (c["pass"].get<bool>() ? "yes" : "**no**") << " |\n";
  if (!pair_only)
    md << "\n## Plots\n\n![loss vs step](loss_vs_step.png)\n\n"
          "![loss vs wall clock](loss_vs_wall_clock.png)\n\n![NIAH](niah.png)\n";
  md << "\n## Definitions\n\n"
        "- wall clock: the sum of the runs' optimizer-step times (forward, backward, update; "
        "validation and checkpoints excluded), from metrics.jsonl. A fresh comparison trains "
        "the Lighthouse->dense run first, so one-time warm-up costs count against it.\n"
        "- switch spike: training loss of the first dense step minus that of the last "
        "Lighthouse step; the excess is the first dense step's loss minus the dense run's on "
        "the same batch (a hard batch raises both runs).\n"
        "- stage 1 in dense mode: the Lighthouse run's last dense-mode validation loss before "
        "the switch minus the dense run's at the same step.\n"
        "- recovery: the first stage-2 step (1 = the first) from which the training loss "
        "averaged over the next " + std::to_string(kRecoveryWindow) + " steps is at or below "
        "the dense run's average over the same steps; both runs see the same batch at every "
        "step.\n";
  if (r.contains("retrieval"))
    for (const char* run : {"dense", "lighthouse"})
      md << "\n### Retrieval, " << run << "\n\n" << retrieval_table(r["retrieval"][run]) << "\n";
  if (r.contains("niah_table"))
    for (const char* run : {"dense", "lighthouse"})
      md << "\n### NIAH, " << run << "\n\n```\n"
         << r["niah_table"][run].get<std::string>() << "\n```\n";
  return md.str();
}

}  // namespace lighthouse::eval
