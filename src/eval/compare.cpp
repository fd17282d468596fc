// Dense-from-scratch vs Lighthouse->dense: runs, evaluation, report and plots (compare.h).
#include "eval/compare.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <vector>
#include <sstream>

#include "eval/figures.h"
#include "eval/report_format.h"
#include "eval/model_source.h"
#include "train/checkpoint.h"

namespace lighthouse::eval {
namespace {

using nlohmann::json;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.flush();
  if (!out) throw std::runtime_error("compare: cannot write " + path);
}


using report::fmt;

train::RunConfig resolve(const CompareOptions& o) {
  return train::resolve_keys(train::RunConfig{}, o.config, o.overrides);
}

// A finished run to reuse: its config must match the comparison's in everything that
// decides the tokens seen (model, data, seed, context, batch, steps) and in its attention.
RunLog reuse(const std::string& dir, const std::string& flag, model::AttentionMode attention,
             const train::RunConfig& base, bool exact_steps = true) {
  train::RunConfig saved;
  std::ifstream in(dir + "/config.json");
  if (!in)
    throw std::runtime_error(flag + ": " + dir + " has no config.json (not a run directory)");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) throw std::runtime_error(flag + ": " + dir + "/config.json is not JSON");
  train::apply_json(saved, j, dir + "/config.json");
  if (saved.train.attention != attention)
    throw std::runtime_error(flag + ": " + dir + " has train.attention = \"" +
                             model::mode_name(saved.train.attention) + "\", expected \"" +
                             model::mode_name(attention) + "\"");
  // model.vocab_size = 0 means "the data's": the saved run holds the value it resolved to, and
  // the data keys are compared below, so the comparison takes it.
  train::RunConfig want = base;
  if (want.model.vocab == 0) want.model.vocab = saved.model.vocab;
  try {
    train::check_resume_compatible(saved, want);
  } catch (const train::ConfigError& e) {
    // "key: cannot change when resuming (checkpoint has A, got B)" -> "key: the run has A, ..."
    std::string msg = e.what();
    const std::string from = "cannot change when resuming (checkpoint has ";
    const auto at = msg.find(from), got = msg.rfind(", got ");
    if (at != std::string::npos && got != std::string::npos && msg.back() == ')')
      msg = msg.substr(0, at) + "the run has " +
            msg.substr(at + from.size(), got - at - from.size()) + ", the comparison " +
            msg.substr(got + 6, msg.size() - got - 7);
    throw std::runtime_error(flag + ": " + dir + " differs from the comparison's config: " + msg);
  }
  if (!exact_steps) return read_run_log(dir);  // --budget time: the run's own length
  if (saved.train.steps != base.train.steps)
    throw std::runtime_error(flag + ": " + dir +
                             " has train.steps = " + std::to_string(saved.train.steps) +
                             ", the comparison " + std::to_string(base.train.steps));
  if (attention == model::AttentionMode::Lighthouse && saved.train.stage1_steps != base.train.stage1_steps)
    throw std::runtime_error(flag + ": " + dir + " has train.stage1_steps = " +
                             std::to_string(saved.train.stage1_steps) + ", the comparison " +
                             std::to_string(base.train.stage1_steps));
  RunLog log = read_run_log(dir);
  if (log.steps.back().step != base.train.steps)
    throw std::runtime_error(flag + ": " + dir + " stopped at step " +
                             std::to_string(log.steps.back().step) + " of " +
                             std::to_string(base.train.steps) + " (resume it first)");
  return log;
}

}  // namespace

std::pair<int64_t, int64_t> stretched_steps(int64_t steps, int64_t stage1, double budget_s,
                                            double dense_step_s, double lighthouse_step_s) {
  const double f = steps > 0 ? static_cast<double>(stage1) / static_cast<double>(steps) : 0;
  const double per_step = f * lighthouse_step_s + (1 - f) * dense_step_s;
  if (!(per_step > 0) || !(budget_s > 0))
    throw std::runtime_error("--budget time: cannot size the run (dense run " +
                             fmt("%.3f", budget_s) + " s, step times " +
                             fmt("%.4f", dense_step_s) + " / " + fmt("%.4f", lighthouse_step_s) +
                             " s)");
  const int64_t n = std::max<int64_t>(1, static_cast<int64_t>(std::floor(budget_s / per_step)));
  const int64_t n1 = std::min<int64_t>(n, static_cast<int64_t>(std::llround(f * n)));
  return {n, n1};
}

namespace {

// The i-th of a flag's run directories ("" when none), "{seed}" replaced by the seed.
std::string run_for(const std::vector<std::string>& runs, size_t i, int64_t seed,
                    const std::string& flag) {
  if (runs.empty()) return "";
  std::string r = runs.size() == 1 ? runs[0] : runs.at(i);
  for (size_t at; (at = r.find("{seed}")) != std::string::npos;)
    r.replace(at, 6, std::to_string(seed));
  if (!std::filesystem::is_directory(r))
    throw std::runtime_error(flag + ": " + r + " is not a directory");
  return r;
}

// The median step time of a run's steps after its first `skip` (warm-up), or NaN.
double median_step_time(const RunLog& log, size_t skip) {
  std::vector<double> t;
  for (size_t i = skip; i < log.steps.size(); ++i) t.push_back(log.steps[i].step_time_s);
  if (t.empty()) return std::nan("");
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

// A run's stored evaluation (<run>/eval.json, written by the comparison that trained it) when
// it was made with these options, else null.
json stored_eval(const std::string& run_dir, const EvalOptions& eo) {
  std::ifstream in(run_dir + "/eval.json");
  if (!in) return nullptr;
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("options") || j["options"] != eval_key(eo)) return nullptr;
  return j;
}

struct Pair {
  json report;
  RunLog dense, lighthouse;
  json eval_dense, eval_lighthouse;
};

// Trains (or reuses) and evaluates one pair in `dir` with run.seed = seed.
Pair run_pair(const CompareOptions& o, const train::Overrides& sets, int64_t seed, size_t index,
              const std::string& dir, const CompareHooks& hooks,
              const std::function<void(const std::string&)>& say) {
  train::Overrides pair_sets = sets;
  pair_sets.emplace_back("run.seed", std::to_string(seed));
  train::RunConfig base = train::resolve_keys(train::RunConfig{}, o.config, pair_sets);
  base.train.attention = model::AttentionMode::Lighthouse;
  train::validate(base);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("--out: cannot create " + dir + ": " + ec.message());

  const auto train_run = [&](const std::string& name, train::Overrides extra) {
    train::Launch launch{o.config, pair_sets, {}};
    launch.overrides.emplace_back("train.attention", name == "probe" ? "lighthouse" : name);
    launch.overrides.emplace_back("run.dir", dir + "/" + name);
    for (auto& kv : extra) launch.overrides.push_back(std::move(kv));
    say("compare: seed " + std::to_string(seed) + ": training the " +
        (name == "dense"   ? std::string("dense-from-scratch")
         : name == "probe" ? std::string("Lighthouse timing probe")
                           : std::string("Lighthouse->dense")) +
        " run in " + dir + "/" + name);
    auto session = train::open_session(launch);
    train::train(*session, hooks.train ? hooks.train(name) : train::ConsoleHooks{});
    return read_run_log(session->run_dir);
  };

  Pair p;
  const bool time = o.budget == Budget::Time;
  const std::string given_dense = run_for(o.dense_runs, index, seed, "--dense-run");
  const std::string given_lh = run_for(o.lighthouse_runs, index, seed, "--lighthouse-run");
  const auto dense = [&] {
    if (!given_dense.empty()) {
      say("compare: seed " + std::to_string(seed) + ": reusing " + given_dense + " as the dense run");
      return reuse(given_dense, "--dense-run", model::AttentionMode::Dense, base);
    }
    return train_run("dense", {});
  };
  // Under the token budget the Lighthouse->dense run trains first: one-time costs of the
  // process (kernel autotuning, allocator growth) then count against it, not against the
  // dense baseline. Under the time budget the dense run's wall clock sizes it.
  if (!time) {
    p.lighthouse = !given_lh.empty()
                       ? reuse(given_lh, "--lighthouse-run", model::AttentionMode::Lighthouse, base)
                       : train_run("lighthouse", {});
    p.dense = dense();
  } else {
    p.dense = dense();
    if (!given_lh.empty()) {
      p.lighthouse = reuse(given_lh, "--lighthouse-run", model::AttentionMode::Lighthouse, base,
                           /*exact_steps=*/false);
    } else {
      const double budget_s = p.dense.wall_clock_s();
      const double dense_step = budget_s / static_cast<double>(p.dense.steps.size());
      const int64_t probe_steps = std::min<int64_t>(12, std::max<int64_t>(1, base.train.stage1_steps));
      const RunLog probe = train_run(
          "probe", {{"train.steps", std::to_string(probe_steps)},
                    {"train.stage1_steps", std::to_string(probe_steps)},
                    {"schedule.warmup_steps", "0"},
                    {"val.every", "0"},
                    {"checkpoint.every", "0"},
                    {"checkpoint.keep", "1"}});
      const double lh_step = median_step_time(probe, std::min<size_t>(2, probe.steps.size() - 1));
      const auto [steps, stage1] = stretched_steps(base.train.steps, base.train.stage1_steps,
                                                   budget_s, dense_step, lh_step);
      char line[240];
      std::snprintf(line, sizeof line,
                    "compare: seed %lld: --budget time: dense %.1f s (%.4f s/step), Lighthouse "
                    "%.4f s/step (probe median) -> %lld steps, %lld with Lighthouse, stopped at "
                    "%.1f s",
                    static_cast<long long>(seed), budget_s, dense_step, lh_step,
                    static_cast<long long>(steps), static_cast<long long>(stage1), budget_s);
      say(line);
      const int64_t warmup =
          std::min<int64_t>(base.schedule.warmup_steps, std::max<int64_t>(0, steps));
      p.lighthouse = train_run("lighthouse", {{"train.steps", std::to_string(steps)},
                                              {"train.stage1_steps", std::to_string(stage1)},
                                              {"schedule.warmup_steps", std::to_string(warmup)},
                                              {"train.time_limit_s", fmt("%.6f", budget_s)}});
    }
  }

  for (const std::string name : {"dense", "lighthouse"}) {
    const RunLog& log = name == "dense" ? p.dense : p.lighthouse;
    const std::string flag = name == "dense" ? "--dense-run" : "--lighthouse-run";
    const bool reused = !(name == "dense" ? given_dense : given_lh).empty();
    EvalOptions eo = o.eval;
    eo.ppl = eo.niah = true;
    eo.retrieval = base.data.needles.records > 0;  // the retrieval test of runs with needles
    eo.modes = {model::AttentionMode::Dense};
    json ev = stored_eval(log.dir, eo);
    if (!ev.is_null()) {
      say("compare: seed " + std::to_string(seed) + ": the " + name + " run's " + log.dir +
          "/eval.json has this evaluation; not evaluating again");
    } else {
      if (reused && !std::filesystem::exists(log.dir + "/checkpoints"))
        throw std::runtime_error(
            flag + ": " + log.dir + " has no checkpoints and no eval.json made with this "
            "comparison's evaluation options (" + eval_key(eo).dump() + ")");
      EvalModel m = load_checkpoint_model(log.dir, flag);
      place(m, o.device);
      say("compare: seed " + std::to_string(seed) + ": evaluating the " + name + " run (" +
          m.source + ")");
      ev = run_eval(m, eo, hooks.eval);
      ev["device"] = m.device.str();
      ev["options"] = eval_key(eo);
      // Only into runs this comparison trained (inside --out): a reused run is read, never written.
      if (!reused) write_text(log.dir + "/eval.json", ev.dump(2) + "\n");
    }
    write_text(dir + "/eval-" + name + ".json", ev.dump(2) + "\n");
    (name == "dense" ? p.eval_dense : p.eval_lighthouse) = std::move(ev);
  }
  p.report = compare_report(p.dense, p.lighthouse, p.eval_dense, p.eval_lighthouse);
  p.report["seed"] = seed;
  p.report["dir"] = dir;
  p.report["niah_table"] = {{"dense", niah_table(p.eval_dense["niah"])},
                            {"lighthouse", niah_table(p.eval_lighthouse["niah"])}};
  if (p.eval_dense.contains("retrieval"))
    p.report["retrieval"] = {{"dense", p.eval_dense["retrieval"]},
                             {"lighthouse", p.eval_lighthouse["retrieval"]}};
  return p;
}

std::string join_list(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

}  // namespace

json run_compare(const CompareOptions& o, const CompareHooks& hooks) {
  const auto say = [&](const std::string& s) {
    if (hooks.line)
      hooks.line(s);
    else
      std::cout << s << std::endl;
  };
  if (o.out.empty()) throw std::runtime_error("--out: an output directory is required");
  // Deterministic kernels by default: two runs of a pair then differ by the attention alone.
  train::Overrides sets = {{"run.deterministic", "true"}};
  for (const auto& kv : o.overrides) sets.push_back(kv);
  train::RunConfig base = resolve(o);
  base.train.attention = model::AttentionMode::Lighthouse;
  train::validate(base);
  std::vector<int64_t> seeds = o.seeds;
  if (seeds.empty()) seeds.push_back(base.run.seed);
  for (size_t i = 0; i < seeds.size(); ++i) {
    if (seeds[i] < 0)
      throw std::runtime_error("--seeds: a seed must be >= 0, got " + std::to_string(seeds[i]));
    for (size_t j = 0; j < i; ++j)
      if (seeds[j] == seeds[i])
        throw std::runtime_error("--seeds: seed " + std::to_string(seeds[i]) + " is listed twice");
  }
  for (const auto& [runs, flag] : {std::pair{&o.dense_runs, "--dense-run"},
                                   std::pair{&o.lighthouse_runs, "--lighthouse-run"}})
    if (runs->size() > 1 && runs->size() != seeds.size())
      throw std::runtime_error(std::string(flag) + ": " + std::to_string(runs->size()) +
                               " runs for " + std::to_string(seeds.size()) +
                               " seeds (give one per seed, or one with {seed} in it)");
  const double margin = o.margin >= 0 ? o.margin
                                      : o.budget == Budget::Time ? kTimeMargin : kTargetLossDelta;
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec) throw std::runtime_error("--out: cannot create " + o.out + ": " + ec.message());

  const bool one = o.seeds.empty();
  std::vector<Pair> pairs;
  std::vector<json> reports;
  for (size_t i = 0; i < seeds.size(); ++i) {
    const std::string dir = one ? o.out : o.out + "/seed-" + std::to_string(seeds[i]);
    pairs.push_back(run_pair(o, sets, seeds[i], i, dir, hooks, say));
    reports.push_back(pairs.back().report);
    say("compare: seed " + std::to_string(seeds[i]) + " (dense mode): dense " +
        fmt("%.4f", dense_eval_loss(pairs.back().eval_dense)) + ", Lighthouse->dense " +
        fmt("%.4f", dense_eval_loss(pairs.back().eval_lighthouse)) + " (delta " +
        (reports.back()["loss_delta"].is_number()
             ? fmt("%+.4f", reports.back()["loss_delta"].get<double>())
             : std::string("n/a")) +
        ")");
  }

  json report = paired_report(reports, seeds, o.budget, margin);
  report["pairs_detail"] = reports;
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  report["date"] = date;
  report["device"] = pairs.front().eval_dense.value("device", "");
  report["config"] = o.config.empty() ? "tiny (defaults)" : o.config;
  json set_list = json::array();
  for (const auto& [k, v] : o.overrides) set_list.push_back(k + "=" + v);
  report["overrides"] = set_list;
  std::string command = "lighthouse compare";
  if (!o.config.empty()) command += " --config " + o.config;
  for (const auto& [k, v] : o.overrides) command += " --set " + k + "=" + v;
  command += " --out " + o.out;
  if (!o.seeds.empty()) {
    std::vector<std::string> s;
    for (const auto x : o.seeds) s.push_back(std::to_string(x));
    command += " --seeds " + join_list(s);
  }
  if (o.budget != Budget::Tokens) command += " --budget " + budget_name(o.budget);
  if (o.margin >= 0) command += " --margin " + fmt("%g", o.margin);
  if (!o.dense_runs.empty()) command += " --dense-run " + join_list(o.dense_runs);
  if (!o.lighthouse_runs.empty()) command += " --lighthouse-run " + join_list(o.lighthouse_runs);
  report["command"] = command;

  std::ostringstream md;
  md << "# Dense from scratch vs Lighthouse -> dense\n\n" << report["date"].get<std::string>()
     << ", " << report["device"].get<std::string>() << ". `" << command << "`\n\n"
     << paired_markdown(report) << "\n## Plots\n\n![loss vs step](loss_vs_step.png)\n\n"
     << "![loss vs wall clock](loss_vs_wall_clock.png)\n\n![NIAH](niah.png)\n";
  for (const auto& r : reports)
    md << "\n# Seed " << r["seed"].dump() << "\n\n" << report_markdown(r, /*pair_only=*/true);
  write_text(o.out + "/report.json", report.dump(2) + "\n");
  write_text(o.out + "/report.md", md.str());

  std::vector<RunLog> runs;
  std::vector<plot::HeatmapPanel> niah;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::string tag = one ? "" : " (seed " + std::to_string(seeds[i]) + ")";
    runs.push_back(pairs[i].dense);
    runs.back().name = "dense" + tag;
    runs.push_back(pairs[i].lighthouse);
    runs.back().name = "Lighthouse->dense" + tag;
    niah.push_back(niah_panel(pairs[i].eval_dense["niah"], "dense from scratch" + tag));
    niah.push_back(niah_panel(pairs[i].eval_lighthouse["niah"], "Lighthouse -> dense" + tag));
  }
  try {
    plot::write_lines(o.out + "/loss_vs_step.png", {loss_panel(runs, LossAxis::Step)});
    plot::write_lines(o.out + "/loss_vs_wall_clock.png", {loss_panel(runs, LossAxis::WallClock)});
    plot::write_heatmaps(o.out + "/niah.png", niah);
  } catch (const plot::PlotError& e) {
    throw plot::PlotError(std::string(e.what()) +
                          " (report.json and report.md are written; "
                          "draw the figures later with `lighthouse plot` on the run folders "
                          "and eval-*.json)");
  }

  const json& d = report["loss_delta"];
  say("compare (dense mode, equal " + budget_name(o.budget) + ", " + std::to_string(pairs.size()) +
      " pair(s)): loss delta mean " + (d["mean"].is_number() ? fmt("%+.4f", d["mean"].get<double>()) : "n/a") +
      (d["ci95"].is_array() ? ", 95% interval [" + fmt("%+.4f", d["ci95"][0].get<double>()) +
                                  ", " + fmt("%+.4f", d["ci95"][1].get<double>()) + "]"
                            : std::string(", no interval with one pair")) +
      "; speedup " +
      (report["speedup_mean"].is_number() ? fmt("%.2fx", report["speedup_mean"].get<double>())
                                          : "n/a"));
  for (const auto& c : report["criteria"])
    say(std::string("  ") +
        (c["pass"].is_null() ? "n/a " : c["pass"].get<bool>() ? "pass" : "FAIL") + "  " +
        c["name"].get<std::string>() + " " + c["op"].get<std::string>() + " " +
        c["target"].dump() + ": " + (c["value"].is_null() ? "n/a" : c["value"].dump()));
  say("compare: wrote " + o.out +
      "/report.md, report.json, loss_vs_step.png, loss_vs_wall_clock.png, niah.png");
  return report;
}

}  // namespace lighthouse::eval
