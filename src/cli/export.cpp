// `lighthouse export --run DIR | --checkpoint FILE --out DIR [--dtype ...]`: writes a trained
// model (dense: the attention mode is not a weight) as Hugging Face Llama safetensors plus
// config.json and generation_config.json with the run's special ids, plus the run's tokenizer
// files when it knows them; the run config goes into the safetensors metadata for
// `lighthouse eval`. Nothing is written under --out until every file is complete.
#include "model/export.h"

#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "model/staged_dir.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace lighthouse::cli {
namespace {

struct ExportArgs {
  std::string run, checkpoint, out, dtype = "float32", tokenizer;
};

at::ScalarType export_dtype(const std::string& s) {
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float16") return at::kHalf;
  return at::kFloat;
}

int run_export(const ExportArgs& a) {
  const std::string target = a.checkpoint.empty() ? a.run : a.checkpoint;
  train::TrainedModel tm;
  try {
    tm = train::load_trained_model(target);
  } catch (const train::CheckpointError& e) {
    throw std::runtime_error((a.checkpoint.empty() ? "--run: " : "--checkpoint: ") +
                             std::string(e.what()));
  }
  // The run config rides in the safetensors metadata, so `lighthouse eval --model DIR` knows
  // the Lighthouse parameters, the dense layers, the trained context and the validation split.
  // Special ids: the byte tokenizer's, or the data's EOS (the shards' header) and BOS.
  const train::Vocabulary& v = tm.vocab;
  const model::HfSpecialTokens ids =
      v.bytes ? model::HfSpecialTokens{model::kBos, model::kEos, model::kPad}
              : model::HfSpecialTokens{v.bos_id, v.eos_id, v.pad_id};
  const std::string tokenizer = !a.tokenizer.empty() ? a.tokenizer : v.tokenizer;
  constexpr int64_t kMaxPositions = 131072;
  std::vector<std::string> tokenizer_files;
  // Everything is written into a fresh folder, published only when complete (docs/trust.md).
  model::StagedDir out(a.out, "--out");
  try {
    model::export_hf(tm.model, out.path(), export_dtype(a.dtype), kMaxPositions,
                     {{"lighthouse_run_config", train::to_json(tm.cfg).dump()},
                      {"lighthouse_step", std::to_string(tm.step)},
                      {"lighthouse_vocabulary", v.to_json().dump()}},
                     ids);
  } catch (const c10::Error& e) {
    throw std::runtime_error("--out: " + std::string(e.what_without_backtrace()));
  }
  try {
    if (!tokenizer.empty())
      tokenizer_files = model::export_tokenizer(tokenizer, out.path(), ids, kMaxPositions);
  } catch (const c10::Error& e) {
    throw std::runtime_error((a.tokenizer.empty() ? "the run's tokenizer (give --tokenizer): "
                                                  : "--tokenizer: ") +
                             std::string(e.what_without_backtrace()));
  }
  out.commit();
  std::cout << "exported " << tm.path << " (step " << tm.step << ", " << tm.cfg.model.n_layers
            << " layers, dense attention) as " << a.dtype << " to " << a.out << "\n";
  std::cout << "vocabulary: " << v.describe() << "\n";
  if (!tokenizer_files.empty()) {
    std::cout << "tokenizer from " << tokenizer << ":";
    for (const auto& f : tokenizer_files) std::cout << " " << f;
    std::cout << "\n";
  } else if (!v.bytes) {
    std::cout << "no tokenizer files: the run does not know its tokenizer (give --tokenizer, or "
                 "train with data.tokenizer)\n";
  }
  return 0;
}

}  // namespace

void add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* sub = app.add_subcommand(
      "export", "Write a trained model as Hugging Face Llama safetensors + config.json");
  auto* run = sub->add_option("--run", a->run, "run directory (its newest readable checkpoint)")
                  ->check(CLI::ExistingDirectory);
  auto* ck =
      sub->add_option("--checkpoint", a->checkpoint, "checkpoint file")->check(CLI::ExistingFile);
  run->excludes(ck);
  sub->add_option("--out", a->out, "output directory")->required();
  sub->add_option("--tokenizer", a->tokenizer,
                  "tokenizer.json or tokenizer directory to copy beside the model (default: the "
                  "run's data.tokenizer / manifest / model.init tokenizer)")
      ->check(CLI::ExistingPath);
  sub->add_option("--dtype", a->dtype, "float32 | bfloat16 | float16")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}));
  sub->callback([a] {
    if (a->run.empty() && a->checkpoint.empty())
      throw CLI::ValidationError("export", "one of --run or --checkpoint is required");
    const int rc = run_export(*a);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace lighthouse::cli
