// Loss curves, NIAH heatmaps and latency plots (figures.h).
#include "eval/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>

namespace lighthouse::eval {
namespace {

const double kNaN = std::nan("");

std::string size_label(int64_t n) {
  if (n >= (1 << 20) && n % (1 << 20) == 0) return std::to_string(n >> 20) + "M";
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n / 1024) + "K";
  return std::to_string(n);
}

}  // namespace

plot::LinePanel loss_panel(const std::vector<RunLog>& runs, LossAxis x) {
  plot::LinePanel p;
  p.xlabel = x == LossAxis::Step ? "step" : "training wall clock (s, sum of step times)";
  p.ylabel = "loss (nats/byte)";
  p.title = x == LossAxis::Step ? "loss vs step" : "loss vs wall clock";
  p.title += " (dense mode solid, Lighthouse mode dashed)";
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunLog& r = runs[i];
    const int color = static_cast<int>(i);
    const auto xs = [&](int64_t step, double wall) {
      return x == LossAxis::Step ? static_cast<double>(step) : wall;
    };
    plot::Series dense{r.name + " train, dense mode", {}, {}, color, plot::Style::Solid};
    plot::Series lh{r.name + " train, Lighthouse mode", {}, {}, color, plot::Style::Dashed};
    for (size_t k = 0; k < r.steps.size(); ++k) {
      const auto& s = r.steps[k];
      const bool is_lh = s.mode == "lighthouse";
      // Each mode's series holds its own steps and NaN gaps elsewhere; the step where the
      // mode changes is in both so the curve stays connected.
      const bool next_differs = k + 1 < r.steps.size() && r.steps[k + 1].mode != s.mode;
      (is_lh ? lh : dense).x.push_back(xs(s.step, s.wall_s));
      (is_lh ? lh : dense).y.push_back(s.loss);
      (is_lh ? dense : lh).x.push_back(xs(s.step, s.wall_s));
      (is_lh ? dense : lh).y.push_back(next_differs ? s.loss : kNaN);
    }
    if (std::any_of(dense.y.begin(), dense.y.end(), [](double v) { return std::isfinite(v); }))
      p.series.push_back(dense);
    if (std::any_of(lh.y.begin(), lh.y.end(), [](double v) { return std::isfinite(v); }))
      p.series.push_back(lh);
    plot::Series vd{r.name + " validation, dense mode",
                    {},
                    {},
                    color,
                    plot::Style::Solid,
                    plot::Marker::Circle};
    plot::Series vl{r.name + " validation, Lighthouse mode",
                    {},
                    {},
                    color,
                    plot::Style::Dashed,
                    plot::Marker::Square};
    for (const auto& v : r.vals) {
      auto& s = v.mode == "lighthouse" ? vl : vd;
      s.x.push_back(xs(v.step, r.wall_at(v.step)));
      s.y.push_back(v.loss);
    }
    if (!vd.x.empty()) p.series.push_back(vd);
    if (!vl.x.empty()) p.series.push_back(vl);
  }
  // Switch markers: a vertical grey line spanning the loss range.
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : p.series)
    for (const double v : s.y)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  for (const auto& r : runs) {
    if (r.switch_step < 0 || !std::isfinite(lo)) continue;
    const double sx =
        x == LossAxis::Step ? static_cast<double>(r.switch_step) : r.wall_at(r.switch_step);
    p.series.push_back({"", {sx, sx}, {lo, hi}, plot::kGrey, plot::Style::Dotted});
    p.notes.push_back({sx, lo, "switch (" + r.name + ")"});
  }
  return p;
}

plot::HeatmapPanel niah_panel(const nlohmann::json& niah, const std::string& title) {
  if (!niah.is_object() || !niah.contains("cells"))
    throw std::runtime_error("niah: the JSON has no \"niah\" object with \"cells\"");
  std::set<int64_t> contexts, depths;
  std::map<std::pair<int64_t, int64_t>, double> acc;
  for (const auto& c : niah.at("cells")) {
    const int64_t ctx = c.at("context").get<int64_t>(), d = c.at("depth").get<int64_t>();
    contexts.insert(ctx);
    depths.insert(d);
    acc[{ctx, d}] = c.at("accuracy").get<double>();
  }
  plot::HeatmapPanel h;
  char buf[96];
  const auto chance = niah.find("chance");  // null: a prompt file's exact-match scoring
  if (chance != niah.end() && chance->is_number())
    std::snprintf(buf, sizeof buf, "%s: mean %.3f (chance %.2f)", title.c_str(),
                  niah.value("mean", kNaN), chance->get<double>());
  else
    std::snprintf(buf, sizeof buf, "%s: mean %.3f (exact match)", title.c_str(),
                  niah.value("mean", kNaN));
  h.title = buf;
  h.xlabel = "needle depth (%)";
  h.ylabel = "context (tokens)";
  for (const int64_t d : depths) h.columns.push_back(std::to_string(d));
  for (const int64_t c : contexts) {
    h.rows.push_back(size_label(c));
    std::vector<double> row;
    for (const int64_t d : depths) {
      const auto it = acc.find({c, d});
      row.push_back(it == acc.end() ? kNaN : it->second);
    }
    h.values.push_back(row);
  }
  return h;
}

plot::LinePanel latency_panel(const nlohmann::json& bench) {
  if (!bench.is_object() || !bench.contains("points"))
    throw std::runtime_error(
        "--bench: the JSON has no \"points\" (not a `lighthouse bench "
        "--device cuda` result)");
  struct Case {
    const char* key;
    const char* label;
    int color;
    plot::Style style;
    plot::Marker marker;
  };
  const std::vector<Case> cases = {
      {"dense_cudnn_fwdbwd", "dense cuDNN fwd+bwd", 0, plot::Style::Solid, plot::Marker::Circle},
      {"dense_flash_fwdbwd", "dense flash fwd+bwd", 1, plot::Style::Solid, plot::Marker::Square},
      {"lh_cudnn_fwdbwd", "Lighthouse fwd+bwd (cuDNN inner)", 2, plot::Style::Solid,
       plot::Marker::Circle},
      {"lh_flash_fwdbwd", "Lighthouse fwd+bwd (flash inner)", 3, plot::Style::Solid,
       plot::Marker::Square},
      {"dense_cudnn_fwd", "dense cuDNN fwd", 0, plot::Style::Dotted, plot::Marker::Circle},
      {"lh_cudnn_fwd", "Lighthouse fwd (cuDNN inner)", 2, plot::Style::Dotted,
       plot::Marker::Circle},
  };
  plot::LinePanel p;
  p.xaxis = plot::Axis::Pow2;
  p.yaxis = plot::Axis::Log10;
  p.legend = plot::Corner::TopLeft;  // latencies grow to the top right
  p.xlabel = "sequence length N";
  p.ylabel = "latency (ms, median)";
  const auto& c = bench.value("config", nlohmann::json::object());
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %s: B=%lld H=%lld D=%lld %s, L=%lld p=%lld",
                bench.value("device", std::string("?")).c_str(),
                bench.value("date", std::string("")).c_str(),
                static_cast<long long>(c.value("B", 0)), static_cast<long long>(c.value("H", 0)),
                static_cast<long long>(c.value("D", 0)), c.value("dtype", std::string()).c_str(),
                static_cast<long long>(c.value("L", 0)), static_cast<long long>(c.value("p", 0)));
  p.title = buf;
  for (const auto& k : cases) {
    plot::Series s{k.label, {}, {}, k.color, k.style, k.marker};
    for (const auto& pt : bench["points"])
      if (pt.contains("cases") && pt["cases"].contains(k.key)) {
        s.x.push_back(pt.at("N").get<double>());
        s.y.push_back(pt["cases"][k.key].at("median_ms").get<double>());
      }
    if (!s.x.empty()) p.series.push_back(s);
  }
  for (const auto& pt : bench["points"]) {
    if (!pt.contains("speedup_fwdbwd") || !pt["speedup_fwdbwd"].is_number()) continue;
    if (!pt.contains("cases") || !pt["cases"].contains("lh_cudnn_fwdbwd")) continue;
    std::snprintf(buf, sizeof buf, "%.1fx", pt["speedup_fwdbwd"].get<double>());
    p.notes.push_back({pt.at("N").get<double>(),
                       pt["cases"]["lh_cudnn_fwdbwd"].at("median_ms").get<double>() * 0.72, buf});
  }
  if (p.series.empty()) throw std::runtime_error("--bench: no point of the JSON has a timed case");
  return p;
}

}  // namespace lighthouse::eval
