// Optimizer and learning-rate schedule: AdamW with two parameter groups (weight decay on
// matrices only, unless optim.decay_norms_and_embeddings), linear warmup then cosine / linear /
// constant decay to optim.lr * schedule.min_lr_factor, and global-norm gradient clipping.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "train/run_config.h"

namespace lighthouse::train {

// Learning rate of step `step` (0-based: the step about to run): warmup then decay; in a
// two-stage run with schedule.rewarmup_steps = n, steps stage1_steps + j (0 <= j < n) take
// (j + 1) / n of it (a linear re-warm-up from the switch).
double lr_at(const RunConfig& cfg, int64_t step);

// AdamW over the model's parameters: group 0 decays, group 1 (1-D tensors such as norm
// weights, and the token embedding) does not, unless decay_norms_and_embeddings is set.
// With `owners` (one rank per parameter, in parameters() order; dist::shard_owners), only the
// parameters owned by `rank` (ZeRO-1); group 0 is then the decay group even when empty.
std::unique_ptr<torch::optim::AdamW> make_optimizer(const torch::nn::Module& model,
                                                    const RunConfig& cfg,
                                                    const std::vector<int>& owners = {},
                                                    int rank = 0);

// Re-applies the config's hyper-parameters to every group (after a resume) and sets the lr.
void set_hyperparameters(torch::optim::AdamW& opt, const RunConfig& cfg, double lr);

// One AdamW step of every parameter with a gradient. `fused`: one multi-tensor kernel per
// group (ATen's _fused_adamw_, the kernel of torch.optim.AdamW(fused=True); the trainer asks
// for it on CUDA with optim.fused), the state kept in `opt` as opt.step() keeps it (exp_avg,
// exp_avg_sq, step), so checkpoints and a switch between the paths carry over; else opt.step().
void adamw_step(torch::optim::AdamW& opt, bool fused);

// Global L2 norm of all gradients, in fp32; scales them to max_norm when above it (and > 0).
// Multi-tensor norms and scaling (one host sync, for the norm).
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace lighthouse::train
