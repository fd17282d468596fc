// `lighthouse eval (--run RUN | --checkpoint FILE | --model DIR) [--ppl] [--retrieval] [--niah]`:
// held-out perplexity per attention mode, the retrieval test and the NIAH grid (dense mode),
// with a progress line, a console report, --json FILE and --heatmap FILE (docs/eval.md).
#include "eval/eval.h"

#include <iostream>
#include <memory>
#include <optional>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/eval_flags.h"
#include "cli/progress.h"
#include "eval/figures.h"
#include "plot/plot.h"

namespace lighthouse::cli {
namespace {

struct EvalArgs {
  std::string run, checkpoint, model, device = "auto", json, heatmap;
  bool ppl = false, niah = false;
  std::string modes = "dense", data;
  int64_t max_tokens = 0;
  NiahFlags niah_flags;
  RetrievalFlags retrieval_flags;
  ConfigFlags keys;  // --set lighthouse.*=VALUE over the run's config
};

int run_eval_command(const EvalArgs& a) {
  eval::EvalOptions o;
  o.ppl = a.ppl;
  o.niah = a.niah;
  o.modes = eval::parse_modes(a.modes);
  o.data = a.data;
  if (a.max_tokens < 0)
    throw std::invalid_argument("--max-tokens: must be >= 0 (0 = all), got " +
                                std::to_string(a.max_tokens));
  o.max_tokens = a.max_tokens;
  apply_niah_flags(a.niah_flags, o);
  apply_retrieval_flags(a.retrieval_flags, o);
  if (!a.json.empty()) check_output_file("--json", a.json);
  if (!a.heatmap.empty()) check_output_file("--heatmap", a.heatmap);
  eval::EvalModel m = !a.model.empty() ? eval::load_export_model(a.model)
                      : !a.checkpoint.empty()
                          ? eval::load_checkpoint_model(a.checkpoint, "--checkpoint")
                          : eval::load_checkpoint_model(a.run, "--run");
  eval::apply_lighthouse_keys(m, overrides(a.keys));
  eval::place(m, a.device);
  std::cout << "eval " << m.source << (m.step >= 0 ? " (step " + std::to_string(m.step) + ")" : "")
            << " on " << m.device.str() << (m.bf16 ? " (bf16 autocast)" : " (fp32)") << "\n";
  EvalProgress progress;
  const auto j = eval::run_eval(m, o, progress.hooks());
  if (!a.json.empty()) {
    write_output_file("--json", a.json, j.dump(2) + "\n");
    std::cout << "wrote " << a.json << "\n";
  }
  if (!a.heatmap.empty()) {
    if (!j.contains("niah")) throw std::invalid_argument("--heatmap: needs --niah");
    plot::write_heatmaps(a.heatmap, {eval::niah_panel(j["niah"], m.source)});
    std::cout << "wrote " << a.heatmap << "\n";
  }
  return 0;
}

}  // namespace

void add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* sub = app.add_subcommand(
      "eval",
      "Held-out perplexity (--ppl), retrieval (--retrieval) and needle-in-a-haystack (--niah) of "
      "a trained model");
  auto* run = sub->add_option("--run", a->run, "run directory (its newest readable checkpoint)")
                  ->check(CLI::ExistingDirectory);
  auto* ck =
      sub->add_option("--checkpoint", a->checkpoint, "checkpoint file")->check(CLI::ExistingFile);
  auto* model = sub->add_option("--model", a->model, "directory written by `lighthouse export`")
                    ->check(CLI::ExistingDirectory);
  run->excludes(ck)->excludes(model);
  ck->excludes(model);
  sub->add_flag("--ppl", a->ppl, "held-out loss and perplexity (dense mode unless --modes)");
  sub->add_option("--modes", a->modes,
                  "attention modes of --ppl: dense, lighthouse or dense,lighthouse (default "
                  "dense; Lighthouse-mode losses read future tokens)");
  sub->add_option("--data", a->data,
                  "evaluate --ppl on this source (anything data.source accepts) instead of the "
                  "run's validation split");
  sub->add_option("--max-tokens", a->max_tokens, "cap --ppl at the first N tokens (0 = all)");
  add_retrieval_flags(*sub, a->retrieval_flags);
  sub->add_flag("--niah", a->niah,
                "needle in a haystack, dense attention (byte prompts; --retrieval is the measure)");
  add_niah_flags(*sub, a->niah_flags);
  add_config_flags(*sub, a->keys, nullptr,
                   "change a lighthouse.* key of the run's config for --modes lighthouse, e.g. "
                   "--set lighthouse.topk=128 (repeatable)",
                   /*key_flags=*/false);
  sub->add_option("--device", a->device, "auto | cpu | cuda | cuda:N");
  sub->add_option("--json", a->json, "write the results as JSON to this file");
  sub->add_option("--heatmap", a->heatmap, "write the NIAH heatmap to this .png / .svg file");
  sub->callback([a] {
    if (a->run.empty() && a->checkpoint.empty() && a->model.empty())
      throw CLI::ValidationError("eval", "one of --run, --checkpoint or --model is required");
    if (!a->ppl && !a->niah && !a->retrieval_flags.on)
      throw CLI::ValidationError("eval", "give --ppl, --retrieval, --niah or several");
    const int rc = run_eval_command(*a);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace lighthouse::cli
