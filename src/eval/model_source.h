// What `lighthouse eval` evaluates: a trained model with the run config it was trained with,
// loaded from a run directory (its newest readable checkpoint), a checkpoint file, or a
// directory written by `lighthouse export` (whose safetensors metadata carries the run config),
// placed on the requested device in dense mode.
#pragma once

#include <torch/torch.h>

#include <string>

#include "model/llama.h"
#include "train/run_config.h"
#include "train/vocabulary.h"

namespace lighthouse::eval {

struct EvalModel {
  model::Llama model{nullptr};
  train::RunConfig cfg;        // the run config of the training run (data, context, Lighthouse)
  bool has_run_config = true;  // false: an export without lighthouse metadata (dense only)
  std::string source;          // checkpoint path or export directory
  int64_t step = -1;           // optimizer steps of the checkpoint, -1 when unknown
  torch::Device device = torch::kCPU;
  bool bf16 = false;  // forward passes under bf16 autocast (CUDA)
  train::Vocabulary vocab;  // what the model's ids mean (bytes unless the run says otherwise)
};

// `target` is a run directory or a checkpoint file. Throws std::runtime_error naming `flag`.
EvalModel load_checkpoint_model(const std::string& target, const std::string& flag);
// A directory written by `lighthouse export`. Throws std::runtime_error naming --model.
EvalModel load_export_model(const std::string& dir);

// The run config's lighthouse.* keys changed by `overrides` (`eval --set`, resolved by
// train::resolve_keys): the model is rebuilt with the new Lighthouse configuration and the same
// weights. Any other key (the weights fix them) or an invalid value is a train::ConfigError
// naming it; a model without a run config (dense only) takes none.
void apply_lighthouse_keys(EvalModel& m, const train::Overrides& overrides);

// Moves the model to `device` (auto | cpu | cuda | cuda:N); bf16 autocast on CUDA unless the
// run trained in fp32. Throws train::ConfigError naming --device.
void place(EvalModel& m, const std::string& device);

}  // namespace lighthouse::eval
