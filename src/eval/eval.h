// `lighthouse eval` as a library call (the CLI and `lighthouse compare` share it): perplexity
// per attention mode on the run's validation split or another source, the retrieval test and
// the NIAH grid in dense mode, as one JSON document plus console lines.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/model_source.h"
#include "eval/niah.h"
#include "eval/retrieval.h"
#include "model/llama.h"

namespace lighthouse::eval {

struct EvalOptions {
  bool ppl = false, niah = false, retrieval = false;
  // --ppl's attention modes, dense first (parse_modes)
  std::vector<model::AttentionMode> modes = {model::AttentionMode::Dense};
  std::string data;        // "" = the run's validation split
  int64_t max_tokens = 0;  // 0 = every sequence
  NiahOptions niah_opts;
  bool contexts_explicit = false;  // --niah-contexts given: no context is skipped
  bool depths_explicit = false;    // --niah-depths given
  // --niah-prompts: a prompt file tokenized with the run's tokenizer (niah_prompts.h); it fixes
  // the grid. "" = the built-in byte prompts, which only a byte-vocabulary model may take.
  std::string niah_prompts;
  RetrievalOptions retrieval_opts;  // --retrieval: the run's data.needles on held-out text
};

// Every option that changes run_eval's numbers, as JSON: two evaluations of one checkpoint
// with equal keys give the same result (compare reuses a run's stored eval.json by it). A new
// field of EvalOptions that changes the result belongs here too.
nlohmann::json eval_key(const EvalOptions& o);

// Console output: permanent lines, and progress (label, done, total, unit) a CLI may draw.
struct EvalHooks {
  std::function<void(const std::string&)> line;
  std::function<void(const std::string&, int64_t, int64_t, const std::string&)> progress;
};

// Parses "dense,lighthouse" (--modes: each mode once, returned dense first) and "1024,2048"
// (--niah-contexts, --niah-depths; K and M suffixes multiply by 1024 and 1048576). Throw
// std::invalid_argument naming the flag (and, for --modes, the accepted values).
std::vector<model::AttentionMode> parse_modes(const std::string& text);
std::vector<int64_t> parse_sizes(const std::string& text, const std::string& flag);

// The NIAH contexts actually run for a model trained at `trained_context`: explicit lists
// as given; the default list without contexts beyond the trained one, or {C/4, C/2, C} when
// none fits. `skipped` receives the default contexts left out.
std::vector<int64_t> niah_contexts(const EvalOptions& o, int64_t trained_context,
                                   std::vector<int64_t>* skipped);

// Runs what `o` asks for on a placed model; returns {"model", "device", "ppl", "retrieval",
// "niah", ...}
// (docs/eval.md). Throws std::runtime_error / std::invalid_argument naming the flag.
nlohmann::json run_eval(EvalModel& m, const EvalOptions& o, const EvalHooks& hooks = {});

// The NIAH accuracy table (contexts down, depths across) of an eval JSON's "niah" object.
std::string niah_table(const nlohmann::json& niah);

}  // namespace lighthouse::eval
