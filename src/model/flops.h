// Arithmetic of one training step of the Llama model (forward + backward, no recomputation):
// the matrix products of its weights and the attention products, per sequence of N tokens.
// The model's FLOPs, not the hardware's: a step that recomputes activations does more work
// than this counts, so FLOPs / step time is the model FLOP rate (MFU's numerator).
#pragma once

#include <cstdint>

#include "model/llama.h"

namespace lighthouse::model {

struct StepFlops {
  double gemm = 0;       // weight products: projections, MLP, LM head (fwd + bwd = 3x fwd)
  double attention = 0;  // Q.K and P.V of causal attention (fwd + bwd = 3.5x fwd), the
                         // Lighthouse layers' inner SDPA on their S slots included
  double scorer = 0;     // the dilated scorer's strided attention (forward only: no gradient)
  double total() const { return gemm + attention + scorer; }
};

// One sequence of n tokens through `cfg` in `mode` (Lighthouse layers: SPEC.md §2's S slots per
// head; always-dense layers and dense mode: n). Lengths are exact: causal attention over n
// positions does n (n + 1) / 2 query-key pairs.
StepFlops step_flops(const ModelConfig& cfg, int64_t n, AttentionMode mode);

// Forward FLOPs of causal attention of `heads` heads of dimension d over n positions.
double causal_attention_fwd_flops(int64_t n, int64_t heads, int64_t d);

}  // namespace lighthouse::model
