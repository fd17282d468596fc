// `lighthouse compare --config FILE [--set key=value ...] --out DIR [--seeds 0,1,2]
// [--budget tokens|time] [--margin X] [--dense-run RUN] [--lighthouse-run RUN]`: trains (or
// reuses) a dense-from-scratch run and a Lighthouse->dense run of one config per seed,
// evaluates them in dense mode and writes DIR/report.{md,json} (paired intervals) and plots.
#include "eval/compare.h"

#include <unistd.h>

#include <iostream>
#include <memory>
#include <optional>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/eval_flags.h"
#include "cli/progress.h"

namespace lighthouse::cli {
namespace {

struct CompareArgs {
  ConfigFlags config;
  std::string out, device = "auto", budget = "tokens";
  std::vector<std::string> dense_runs, lighthouse_runs;
  std::vector<int64_t> seeds;
  double margin = -1;
  int64_t max_tokens = 0;
  NiahFlags niah_flags;
};

int run_compare_command(const CompareArgs& a) {
  eval::CompareOptions o;
  o.config = a.config.file;
  o.overrides = overrides(a.config);
  o.out = a.out;
  o.seeds = a.seeds;
  o.dense_runs = a.dense_runs;
  o.lighthouse_runs = a.lighthouse_runs;
  std::string err;
  o.budget = eval::parse_budget(a.budget, &err);
  if (!err.empty()) throw std::invalid_argument("--budget: " + err);
  if (a.margin != -1 && !(a.margin >= 0))
    throw std::invalid_argument("--margin: must be >= 0, got " + std::to_string(a.margin));
  o.margin = a.margin;
  o.device = a.device;
  if (a.max_tokens < 0)
    throw std::invalid_argument("--max-tokens: must be >= 0 (0 = all), got " +
                                std::to_string(a.max_tokens));
  o.eval.max_tokens = a.max_tokens;
  apply_niah_flags(a.niah_flags, o.eval);

  std::optional<Progress> train_bar;
  EvalProgress eval_progress;
  eval::CompareHooks hooks;
  hooks.line = [&](const std::string& text) { std::cout << text << std::endl; };
  hooks.train = [&](const std::string& name) {
    train::ConsoleHooks h;
    h.line = [name, &train_bar](const std::string& text) {
      if (train_bar) std::fprintf(stderr, "\r\033[K");
      std::cout << "[" << name << "] " << text << std::endl;
    };
    train_bar.reset();
    if (isatty(STDERR_FILENO))
      h.progress = [name, &train_bar](int64_t done, int64_t total, const std::string& extra) {
        if (!train_bar) train_bar.emplace("train " + name, total, "tok");
        train_bar->update(done, extra);
      };
    return h;
  };
  hooks.eval = eval_progress.hooks();
  eval::run_compare(o, hooks);
  return 0;
}

}  // namespace

void add_compare(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  CLI::App* sub = app.add_subcommand(
      "compare",
      "Dense from scratch vs Lighthouse->dense on one config: train (or reuse) both, evaluate "
      "both in dense mode, write report.md, report.json and plots");
  add_config_flags(*sub, a->config, "TOML run config (default: the tiny config)",
                   "override a config key for both runs (repeatable)", /*key_flags=*/true);
  sub->add_option("--out", a->out, "output directory (runs, report, plots)")->required();
  sub->add_option("--seeds", a->seeds,
                  "one dense / Lighthouse->dense pair per seed (run.seed), comma-separated; "
                  "report.md gives the 95% t-interval of the paired loss differences")
      ->delimiter(',');
  sub->add_option("--budget", a->budget,
                  "tokens: both runs see the same tokens | time: Lighthouse->dense trains for "
                  "the dense run's wall clock");
  sub->add_option("--margin", a->margin,
                  "the loss criterion passes when the interval's upper bound is <= this "
                  "(default 0.02 with --budget tokens, 0 with time)");
  sub->add_option("--dense-run", a->dense_runs,
                  "reuse finished dense runs: one per seed (comma-separated) or one with "
                  "{seed} in its path")
      ->delimiter(',');
  sub->add_option("--lighthouse-run", a->lighthouse_runs,
                  "reuse finished Lighthouse->dense runs (as --dense-run)")
      ->delimiter(',');
  sub->add_option("--device", a->device, "evaluation device: auto | cpu | cuda | cuda:N");
  sub->add_option("--max-tokens", a->max_tokens,
                  "cap the perplexity at the first N validation tokens (0 = all)");
  add_niah_flags(*sub, a->niah_flags);
  sub->callback([a] {
    const int rc = run_compare_command(*a);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace lighthouse::cli
