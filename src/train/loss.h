// The one loss of training, validation and evaluation: mean next-token cross-entropy.
#pragma once

#include <torch/torch.h>

#include "dist/group.h"
#include "model/llama.h"

namespace lighthouse::train {

// Mean cross-entropy (fp32) of `model` predicting batch[:, 1:] from batch[:, :-1]; batch is
// [B, N + 1] int64 on any device, moved to `device`; the forward runs under bf16 autocast
// when `bf16`. Returns a 0-dim tensor on `device`. With a context-parallel group `cp` (the
// model set to it, model::set_context_parallel) the rank predicts its two chunks of the
// sequence (dist/cp_layout.h) and returns the mean over them: the ranks' mean is the loss.
at::Tensor next_token_loss(model::Llama& model, const at::Tensor& batch,
                           const torch::Device& device, bool bf16, dist::Group* cp = nullptr);

}  // namespace lighthouse::train
