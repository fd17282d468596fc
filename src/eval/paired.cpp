// Paired comparisons over seeds: intervals, time to dense quality, the summary (paired.h).
#include "eval/paired.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "eval/compare.h"
#include "eval/report_format.h"

namespace lighthouse::eval {
namespace {

using nlohmann::json;
using report::fmt;
using report::number;
using report::number_or_null;

double mean_of(const std::vector<double>& v) {
  if (v.empty()) return std::nan("");
  double s = 0;
  for (const double x : v) s += x;
  return s / static_cast<double>(v.size());
}

}  // namespace

std::string budget_name(Budget b) { return b == Budget::Time ? "time" : "tokens"; }

Budget parse_budget(const std::string& name, std::string* error) {
  if (name == "tokens") return Budget::Tokens;
  if (name == "time") return Budget::Time;
  *error = "must be one of tokens | time, got \"" + name + "\"";
  return Budget::Tokens;
}

double t_quantile_975(int64_t df) {
  static constexpr double kTable[] = {
      12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
      2.2010,  2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
      2.0796,  2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423};
  if (df < 1) return std::nan("");
  if (df <= 30) return kTable[df - 1];
  const double z = 1.959963984540054, v = static_cast<double>(df);
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v);
}

Interval paired_interval(const std::vector<double>& deltas) {
  Interval r;
  r.n = static_cast<int64_t>(deltas.size());
  r.mean = mean_of(deltas);
  if (r.n < 2) {
    r.sd = r.lo = r.hi = r.t = std::nan("");
    return r;
  }
  double ss = 0;
  for (const double d : deltas) ss += (d - r.mean) * (d - r.mean);
  r.sd = std::sqrt(ss / static_cast<double>(r.n - 1));
  r.t = t_quantile_975(r.n - 1);
  const double half = r.t * r.sd / std::sqrt(static_cast<double>(r.n));
  r.lo = r.mean - half;
  r.hi = r.mean + half;
  return r;
}

json time_to_dense_quality(const RunLog& dense, const RunLog& lh) {
  const double target = dense.last_dense_val();
  const double wd = dense.wall_clock_s();
  json r = {{"target_loss", number_or_null(target)}, {"reached", false}};
  if (!std::isfinite(target)) return r;
  for (const auto& v : lh.vals) {
    if (v.mode != "dense" || !(v.loss <= target)) continue;
    const double t = lh.wall_at(v.step);
    r["reached"] = true;
    r["step"] = v.step;
    r["loss"] = v.loss;
    r["time_s"] = t;
    r["speedup"] = number_or_null(t > 0 ? wd / t : std::nan(""));
    return r;
  }
  return r;
}

json paired_report(const std::vector<json>& pairs, const std::vector<int64_t>& seeds,
                   Budget budget, double margin) {
  json rows = json::array();
  std::vector<double> deltas, speedups, ttq;
  int64_t reached = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const json& p = pairs[i];
    const double d = number(p["loss_delta"]);
    if (std::isfinite(d)) deltas.push_back(d);
    const double s = number(p["speedup"]);
    if (std::isfinite(s)) speedups.push_back(s);
    const json q = p.value("time_to_dense_quality", json::object());
    if (q.value("reached", false)) {
      ++reached;
      ttq.push_back(number(q["speedup"]));
    }
    rows.push_back({{"seed", seeds.at(i)},
                    {"final_loss", p["final_loss"]},
                    {"loss_delta", p["loss_delta"]},
                    {"wall_clock_s", p["wall_clock_s"]},
                    {"speedup", p["speedup"]},
                    {"tokens", p["tokens"]},
                    {"recovery_steps", p["recovery_steps"]},
                    {"time_to_dense_quality", q}});
  }
  const Interval iv = paired_interval(deltas);
  json r;
  r["budget"] = budget_name(budget);
  r["seeds"] = seeds;
  r["pairs"] = rows;
  const bool judged = iv.n >= 2 && std::isfinite(iv.hi);
  r["loss_delta"] = {{"n", iv.n},
                     {"mean", number_or_null(iv.mean)},
                     {"sd", number_or_null(iv.sd)},
                     {"t", number_or_null(iv.t)},
                     {"ci95", judged ? json::array({iv.lo, iv.hi}) : json(nullptr)},
                     {"margin", margin}};
  r["speedup_mean"] = number_or_null(mean_of(speedups));
  r["time_to_dense_quality"] = {{"reached", reached},
                                {"pairs", static_cast<int64_t>(pairs.size())},
                                {"speedup_mean", reached == static_cast<int64_t>(pairs.size())
                                                     ? number_or_null(mean_of(ttq))
                                                     : json(nullptr)}};
  json criteria = json::array();
  criteria.push_back(
      {{"name", std::string("final dense-mode loss, Lighthouse->dense minus dense, at equal ") +
                    (budget == Budget::Time ? "time" : "tokens") + ": upper bound of the 95% "
                    "t-interval over the pairs"},
       {"target", margin},
       {"op", "<="},
       {"value", judged ? json(iv.hi) : json(nullptr)},
       {"pass", judged ? json(iv.hi <= margin) : json(nullptr)}});
  if (budget == Budget::Tokens)
    criteria.push_back({{"name", "end-to-end speedup (dense wall clock / Lighthouse->dense), mean"},
                        {"target", kTargetSpeedup},
                        {"op", ">="},
                        {"value", r["speedup_mean"]},
                        {"pass", r["speedup_mean"].is_number() &&
                                     r["speedup_mean"].get<double>() >= kTargetSpeedup}});
  // Retrieval (runs with data.needles): per distance bucket, the exact match of both runs and
  // the mean over the pairs of Lighthouse->dense minus dense.
  bool all_retrieval = !pairs.empty();
  for (const json& p : pairs) all_retrieval = all_retrieval && p.contains("retrieval");
  if (all_retrieval) {
    json buckets = json::array();
    double worst = std::nan("");
    const json& first = pairs[0]["retrieval"]["dense"]["full"]["buckets"];
    for (size_t b = 0; b < first.size(); ++b) {
      std::vector<double> d, dl, ll;
      for (const json& p : pairs) {
        const json& db = p["retrieval"]["dense"]["full"]["buckets"];
        const json& lb = p["retrieval"]["lighthouse"]["full"]["buckets"];
        if (b >= db.size() || b >= lb.size()) continue;
        const double x = number(db[b]["exact_match"]), y = number(lb[b]["exact_match"]);
        if (!std::isfinite(x) || !std::isfinite(y)) continue;
        dl.push_back(x);
        ll.push_back(y);
        d.push_back(y - x);
      }
      const Interval iv = paired_interval(d);
      if (std::isfinite(iv.mean)) worst = std::isfinite(worst) ? std::min(worst, iv.mean) : iv.mean;
      buckets.push_back({{"range", first[b].value("range", "")},
                         {"pairs", iv.n},
                         {"dense", number_or_null(mean_of(dl))},
                         {"lighthouse", number_or_null(mean_of(ll))},
                         {"delta_mean", number_or_null(iv.mean)},
                         {"ci95", std::isfinite(iv.hi) ? json::array({iv.lo, iv.hi}) : json(nullptr)}});
    }
    r["retrieval"] = {{"buckets", buckets}, {"worst_delta", number_or_null(worst)}};
    criteria.push_back(
        {{"name", "retrieval exact match, Lighthouse->dense minus dense, mean over the pairs, "
                  "worst distance bucket"},
         {"target", kTargetRetrievalDelta},
         {"op", ">="},
         {"value", number_or_null(worst)},
         {"pass", std::isfinite(worst) && worst >= kTargetRetrievalDelta}});
  }
  r["criteria"] = criteria;
  return r;
}

std::string paired_markdown(const json& r) {
  std::ostringstream md;
  const auto num = [](const json& v, const char* f) {
    return v.is_number() ? fmt(f, v.get<double>()) : std::string("n/a");
  };
  const bool time = r["budget"] == "time";
  md << "## Paired seeds (" << r["pairs"].size() << " pair" << (r["pairs"].size() == 1 ? "" : "s")
     << ", equal " << (time ? "time" : "tokens") << ")\n\n"
     << "Every loss is the final **dense-mode** validation loss (`lighthouse eval --ppl`); "
        "each pair shares its seed, initialization, data order and batches.\n\n"
     << "| seed | dense | Lighthouse->dense | delta | wall clock dense / LH (s) | speedup | "
        "time to dense quality |\n|---|---|---|---|---|---|---|\n";
  for (const auto& p : r["pairs"]) {
    const json& q = p["time_to_dense_quality"];
    md << "| " << p["seed"].dump() << " | " << num(p["final_loss"]["dense"], "%.4f") << " | "
       << num(p["final_loss"]["lighthouse"], "%.4f") << " | " << num(p["loss_delta"], "%+.4f")
       << " | " << num(p["wall_clock_s"]["dense"], "%.1f") << " / "
       << num(p["wall_clock_s"]["lighthouse"], "%.1f") << " | " << num(p["speedup"], "%.3fx")
       << " | "
       << (q.value("reached", false)
               ? num(q["speedup"], "%.2fx") + " (step " + q["step"].dump() + ")"
               : std::string("not reached"))
       << " |\n";
  }
  const json& d = r["loss_delta"];
  md << "\n- loss delta over " << d["n"].dump() << " pair(s): mean " << num(d["mean"], "%+.4f")
     << ", standard deviation " << num(d["sd"], "%.4f") << ", 95% t-interval "
     << (d["ci95"].is_array()
             ? "[" + fmt("%+.4f", d["ci95"][0].get<double>()) + ", " +
                   fmt("%+.4f", d["ci95"][1].get<double>()) + "] (t = " + num(d["t"], "%.3f") + ")"
             : std::string("not defined with one pair"))
     << "\n- time to dense quality reached in " << r["time_to_dense_quality"]["reached"].dump()
     << " of " << r["time_to_dense_quality"]["pairs"].dump() << " pairs"
     << "\n\n| criterion | target | value | pass |\n|---|---|---|---|\n";
  for (const auto& c : r["criteria"])
    md << "| " << c["name"].get<std::string>() << " | " << c["op"].get<std::string>() << " "
       << c["target"].dump() << " | " << num(c["value"], "%.4g") << " | "
       << (c["pass"].is_null() ? "not judged (one pair)"
                               : c["pass"].get<bool>() ? "yes" : "**no**")
       << " |\n";
  if (r.contains("retrieval")) {
    md << "\n| retrieval bucket | dense exact match | Lighthouse->dense | delta (mean) | 95% "
          "interval |\n|---|---|---|---|---|\n";
    for (const auto& b : r["retrieval"]["buckets"])
      md << "| " << b["range"].get<std::string>() << " | " << num(b["dense"], "%.3f") << " | "
         << num(b["lighthouse"], "%.3f") << " | " << num(b["delta_mean"], "%+.3f") << " | "
         << (b["ci95"].is_array() ? "[" + fmt("%+.3f", b["ci95"][0].get<double>()) + ", " +
                                        fmt("%+.3f", b["ci95"][1].get<double>()) + "]"
                                  : std::string("n/a"))
         << " |\n";
  }
  md << "\n- time to dense quality: the dense run's wall clock divided by the Lighthouse->dense "
        "run's cumulative step time at its first dense-mode validation (during training, "
        "`val.batches` held-out batches) at or below the dense run's last one.\n";
  return md.str();
}

}  // namespace lighthouse::eval
