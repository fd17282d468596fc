// The run config of a launch (trainer.cpp's open_session): the config file and overrides
// layered over the defaults (or over an imported Hugging Face model's config), the checkpoint a
// resume reads, and the data-dependent vocabulary.
#pragma once

#include <optional>
#include <string>

#include "dist/group.h"
#include "model/export.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/trainer.h"

namespace lighthouse::train {

// The run config of a launch, with the checkpoint it resumes and the model it imports (if any).
struct Resolved {
  RunConfig cfg;
  std::optional<CheckpointContents> ck;
  std::string ck_path;
  std::optional<model::ExportedModel> init;
};

Resolved resolve(const Launch& launch, const dist::LaunchEnv& env);

// The vocabulary of the model: model.vocab_size, or the data's when 0; never below the data's.
void resolve_vocab(RunConfig& cfg, const Dataset& data, const std::string& checkpoint);

// model.init's weights into a freshly built model (errors as ConfigError).
void load_init_weights(model::Llama& m, const model::ExportedModel& hf, const std::string& dir);

}  // namespace lighthouse::train
