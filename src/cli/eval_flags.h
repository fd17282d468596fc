// Flags shared by `lighthouse eval` and `lighthouse compare`: the NIAH grid, the retrieval
// test and the progress
// lines of an evaluation (one cli::Progress per stage: "ppl dense", "niah", ...).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "cli/progress.h"
#include "eval/eval.h"

namespace lighthouse::cli {

struct NiahFlags {
  std::string contexts, depths, prompts;
  int64_t trials = 10, seed = 0;
  CLI::Option *trials_opt = nullptr, *seed_opt = nullptr;
};

inline void add_niah_flags(CLI::App& sub, NiahFlags& f) {
  sub.add_option("--niah-contexts", f.contexts,
                 "NIAH contexts, e.g. 1024,2048 or 4K,8K (default 4K..96K up to the trained "
                 "context; listed contexts are never skipped)");
  sub.add_option("--niah-depths", f.depths,
                 "NIAH needle depths in percent (default "
                 "0,15,30,50,70,85,100)");
  f.trials_opt = sub.add_option("--trials", f.trials, "NIAH prompts per cell, each with its own seed");
  f.seed_opt = sub.add_option("--seed", f.seed, "NIAH seed");
  sub.add_option("--niah-prompts", f.prompts,
                 "NIAH prompt file tokenized with the run's tokenizer (python -m "
                 "lighthouse.eval.niah_prompts); required for a vocabulary other than bytes")
      ->check(CLI::ExistingFile);
}

inline void apply_niah_flags(const NiahFlags& f, eval::EvalOptions& o) {
  if (!f.contexts.empty()) {
    o.niah_opts.contexts = eval::parse_sizes(f.contexts, "--niah-contexts");
    o.contexts_explicit = true;
  }
  if (!f.depths.empty()) {
    o.niah_opts.depths = eval::parse_sizes(f.depths, "--niah-depths");
    o.depths_explicit = true;
  }
  o.niah_prompts = f.prompts;
  if (!f.prompts.empty())
    for (const CLI::Option* opt : {f.trials_opt, f.seed_opt})
      if (opt && opt->count() > 0)
        throw std::invalid_argument(opt->get_name() +
                                    ": the prompt file given with --niah-prompts fixes the "
                                    "trials and their seeds");
  if (f.trials < 1)
    throw std::invalid_argument("--trials: must be >= 1, got " + std::to_string(f.trials));
  if (f.seed < 0)
    throw std::invalid_argument("--seed: must be >= 0, got " + std::to_string(f.seed));
  o.niah_opts.trials = f.trials;
  o.niah_opts.seed = static_cast<uint64_t>(f.seed);
}

struct RetrievalFlags {
  bool on = false;
  int64_t sequences = 32, seed = 0, window = 512;
  std::string buckets;
};

inline void add_retrieval_flags(CLI::App& sub, RetrievalFlags& f) {
  sub.add_flag("--retrieval", f.on,
               "retrieval test: exact match and loss of data.needles' values by key-query "
               "distance, dense attention, with a sliding-window control (docs/eval.md)");
  sub.add_option("--retrieval-sequences", f.sequences, "held-out sequences of the retrieval test");
  sub.add_option("--retrieval-seed", f.seed, "seed of the retrieval test's needles");
  sub.add_option("--retrieval-window", f.window,
                 "window of the control's sliding-window dense attention (0 = no control)");
  sub.add_option("--retrieval-buckets", f.buckets,
                 "upper edges of the distance buckets (default 256,1K,4K,16K,64K)");
}

inline void apply_retrieval_flags(const RetrievalFlags& f, eval::EvalOptions& o) {
  o.retrieval = f.on;
  eval::RetrievalOptions& r = o.retrieval_opts;
  if (f.sequences < 1)
    throw std::invalid_argument("--retrieval-sequences: must be >= 1, got " +
                                std::to_string(f.sequences));
  if (f.seed < 0)
    throw std::invalid_argument("--retrieval-seed: must be >= 0, got " + std::to_string(f.seed));
  if (f.window < 0)
    throw std::invalid_argument("--retrieval-window: must be >= 0 (0 = no control), got " +
                                std::to_string(f.window));
  r.sequences = f.sequences;
  r.seed = static_cast<uint64_t>(f.seed);
  r.window = f.window;
  if (!f.buckets.empty()) {
    r.edges = eval::parse_sizes(f.buckets, "--retrieval-buckets");
    for (size_t i = 0; i < r.edges.size(); ++i)
      if (r.edges[i] <= (i ? r.edges[i - 1] : 0))
        throw std::invalid_argument(
            "--retrieval-buckets: expected increasing positive edges, got \"" + f.buckets +
            "\"");
  }
}

// Draws a progress line per evaluation stage, a new one whenever the stage changes.
class EvalProgress {
 public:
  eval::EvalHooks hooks() {
    eval::EvalHooks h;
    h.progress = [this](const std::string& label, int64_t done, int64_t total,
                        const std::string& unit) {
      if (!bar_ || label != label_) {
        bar_.emplace(label, total, unit);
        label_ = label;
      }
      bar_->update(done);
    };
    return h;
  }

 private:
  std::optional<Progress> bar_;
  std::string label_;
};

}  // namespace lighthouse::cli
