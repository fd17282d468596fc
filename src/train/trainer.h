// The trainer: a Session (config, model, AdamW, data, position) opened fresh or from a
// checkpoint, one optimizer step at a time (mode of the two-stage recipe, schedule, gradient
// accumulation, autocast, clipping), validation, checkpoints, and the logged training loop.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dist/data_parallel.h"
#include "dist/group.h"
#include "model/llama.h"
#include "train/data.h"
#include "train/run_config.h"
#include "train/vocabulary.h"

namespace lighthouse::train {

// How a run is launched: a config file over the defaults ("" = the tiny config) and key=value
// overrides in command-line order. With run.resume set, the checkpoint's config replaces the
// file and the overrides apply on top of it.
struct Launch {
  std::string config_file;
  Overrides overrides;
  DataProgress data_progress;  // shard verification, data.cache conversion (none when empty)
};

struct Session {
  RunConfig cfg;
  std::string run_dir;
  torch::Device device = torch::kCPU;
  bool bf16 = false;
  model::Llama model{nullptr};
  std::unique_ptr<torch::optim::AdamW> opt;
  std::vector<at::Tensor> params;
  Dataset data;
  Vocabulary vocab;  // what the ids mean (saved in checkpoints for export and eval)
  std::unique_ptr<SequenceLoader> train_loader, val_loader;
  int64_t step = 0;               // optimizer steps completed
  int64_t tokens = 0;             // training tokens consumed
  std::string resumed_from;       // checkpoint path, "" for a fresh run
  std::string saved_mode;         // attention mode recorded in that checkpoint
  int64_t skipped_steps = 0;      // steps skipped for a non-finite loss or gradient
  int64_t consecutive_skips = 0;  // of which the latest in a row
  double train_time_s = 0;        // summed optimizer-step time of the run (train.time_limit_s)
  // Data parallel (dist.*): the group (nullptr for one process), the degree, and the rank that
  // owns each parameter's AdamW state (ZeRO-1; `opt` holds this rank's parameters only).
  std::shared_ptr<dist::Group> group;
  int64_t dp = 1;
  // Context parallel (dist.cp > 1, SPEC.md §10): the ranks of a CP group read the same
  // sequences and hold two chunks of each; gradients are averaged over all ranks. The mesh:
  // rank = dp_rank x cp + cp_rank, cp_group this rank's CP group (the whole group when dp = 1, a
  // sub-group otherwise; null when cp = 1).
  int64_t cp = 1;
  std::shared_ptr<dist::Group> cp_group;
  std::vector<int> owners;
  // Gradient averaging overlapped with the last micro-batch's backward (with a group).
  std::unique_ptr<dist::OverlappedAverager> averager;
  int rank() const { return group ? group->rank() : 0; }
  int dp_rank() const { return static_cast<int>(rank() / cp); }
};

// Resolves and validates the config, seeds, builds everything and restores the checkpoint
// named by run.resume (a run directory: its newest readable checkpoint; or a file). Touches no
// files. Throws ConfigError / CheckpointError with a one-line reason.
std::unique_ptr<Session> open_session(const Launch& launch);
// The validated run config of a launch alone (reads the resumed checkpoint's header and
// tensors, builds nothing): what a launcher needs to decide how many processes to start.
RunConfig resolve_config(const Launch& launch);

// The attention mode of step `step` (0-based) under the two-stage recipe.
model::AttentionMode mode_at(const RunConfig& cfg, int64_t step);
using model::mode_name;  // "dense" | "lighthouse"

struct StepStats {
  int64_t step = 0;  // steps completed after this one
  double loss = 0, lr = 0, grad_norm = 0, step_time_s = 0, tokens_per_s = 0;
  int64_t peak_memory_bytes = 0;
  int64_t memory_bytes = 0;  // in use after the step (current_memory_bytes)
  model::AttentionMode mode = model::AttentionMode::Dense;
  std::string skipped;  // "" = applied; else the non-finite quantity: "loss" or "grad norm"
};

// One optimizer step (train.grad_accum micro-batches of train.batch_size sequences per rank;
// with dp ranks, rank r's micro-batch a holds the sequences a single process would read as
// micro-batch a x dp + r, gradients and the loss are averaged over the ranks, each rank steps
// the AdamW state it owns and broadcasts those parameters). `mode` forces the attention mode
// (benchmarks); by default it follows mode_at(cfg, step). A step whose loss or gradient norm
// is not finite is skipped: weights and AdamW state stay as they were, the data it read and
// the step count advance, and the session counts it (skipped_steps, consecutive_skips).
StepStats train_step(Session& s, std::optional<model::AttentionMode> mode = std::nullopt);
// Mean loss over val.batches fixed validation batches, in the current attention mode.
double validation_loss(Session& s);
// The same in `mode`; the model's attention mode is restored afterwards.
double validation_loss(Session& s, model::AttentionMode mode);
// Tokens one validation run averages over (val.batches x batch_size x context).
int64_t validation_tokens(const RunConfig& cfg);
// The modes validated after a step run in `step_mode`: val.modes with dense first during
// stage 1 (step_mode Lighthouse), dense alone afterwards. Only dense-mode losses measure
// quality: Lighthouse's selection reads the scores of the whole tile, future tokens included.
std::vector<model::AttentionMode> validation_modes(const RunConfig& cfg,
                                                   model::AttentionMode step_mode);
// Writes <run_dir>/checkpoints/step-N.ckpt atomically and prunes old ones. With several ranks:
// collective (the sharded AdamW state is gathered); rank 0 writes, all wait for it.
void save_checkpoint(Session& s);

// The model of a checkpoint (`target`: a checkpoint file, or a run directory's newest), on
// CPU in dense mode, with the run config it was trained with. Throws CheckpointError.
struct TrainedModel {
  model::Llama model{nullptr};
  RunConfig cfg;
  std::string path;
  int64_t step = 0;
  Vocabulary vocab;
};
TrainedModel load_trained_model(const std::string& target);

// Console output of the loop: permanent log lines, and a progress report (tokens done of
// tokens planned for this invocation, plus a short status) that a CLI may draw in place.
struct ConsoleHooks {
  std::function<void(const std::string&)> line;
  std::function<void(int64_t, int64_t, const std::string&)> progress;
};

struct TrainResult {
  std::vector<double> losses;  // per step applied by this invocation (skipped steps left out)
  double final_val_loss = -1;  // dense-mode loss of the last validation, -1 when none
  double wall_s = 0;
  int signal = 0;  // SIGINT / SIGTERM that stopped the loop early (after a checkpoint), else 0
  bool time_limited = false;  // train.time_limit_s ended the run before train.steps
};

// The training loop (on every rank; only rank 0 prints and writes files): run dir (config.toml, config.json, metrics.jsonl, checkpoints/), console
// log lines every log.every steps and a progress line, validation and checkpoints on schedule,
// until train.stop_at or train.steps. A run resumed at train.steps only says it is complete.
// SIGINT / SIGTERM (interrupt.h): the step in progress finishes, a checkpoint is written and
// the loop returns with `signal` set. train.max_skipped_steps non-finite steps in a row stop
// it with an error naming the step and the quantity. Test hooks:
// LIGHTHOUSE_FAULT_KILL_AFTER_STEP=N sends SIGKILL to the process right after step N is
// logged, before its checkpoint; LIGHTHOUSE_FAULT_NONFINITE (failure.h) poisons steps;
// LIGHTHOUSE_FAULT_STALL_RANK=R:S makes rank R sleep S seconds before its first step (the
// collective time-out test).
TrainResult train(Session& s, const ConsoleHooks& console = {});

}  // namespace lighthouse::train
