// Activation recomputation (model.activation_checkpointing; "checkpoint" elsewhere means a
// saved training state, train/checkpoint.h) for libtorch C++, which has no
// torch.utils.checkpoint: the forward runs without building a graph and keeps only its input; the backward recomputes
// the function with grad enabled, under the autocast state of the forward, and
// differentiates it. No RNG state is replayed (the model has no dropout).
#pragma once

#include <torch/torch.h>

#include <functional>

namespace lighthouse::model {

// fn(x), recomputed in backward. params are the tensors fn reads that need gradients (a layer's
// parameters); their gradients are returned through autograd like any other input's.
at::Tensor recomputed(const std::function<at::Tensor(const at::Tensor&)>& fn,
                        const at::Tensor& x, const std::vector<at::Tensor>& params);

// The same for a function of several tensors to several (the fused layers pass the residual
// stream and the pending branch, model/llama.cpp); an output may go unused.
using MultiFn = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>;
std::vector<at::Tensor> recomputed(const MultiFn& fn, const std::vector<at::Tensor>& xs,
                                   const std::vector<at::Tensor>& params);

}  // namespace lighthouse::model
