// Ring attention over a context-parallel group (SPEC.md §10): exact causal attention over a
// sequence held in the load-balanced layout of cp_layout.h, computed block by block with stock
// SDPA returning log-sum-exp and merged by LSE. K and V travel around the ring (rank r sends to
// r+1, receives from r-1); the next block's transfer is posted before the current block is
// computed. The backward recomputes each block's gradients from the merged output and LSE and
// passes the K/V gradients around the ring with the blocks.
#pragma once

#include <torch/torch.h>

#include "dist/group.h"

namespace lighthouse::dist {

// q, k, v [B, H, 2n, D] on every rank of `g` (the same B, H, n, D everywhere; k and v with q's
// heads): the rank's head chunk then its tail chunk. Returns [B, H, 2n, D], equal to rank's
// part of causal SDPA (scale 1/sqrt(D)) over the whole sequence. Differentiable in q, k, v.
// Collective over g (forward and backward); every rank calls it in the same order.
at::Tensor ring_attention(Group& g, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// Dense causal attention in the model's layout: q [B, 2n, H, D], k, v [B, 2n, Hkv, D] (GQA:
// H % Hkv == 0) in the CP layout -> [B, 2n, H, D]. Ring attention on the full sequence.
at::Tensor ring_dense_attention(Group& g, const at::Tensor& q, const at::Tensor& k,
                                const at::Tensor& v);

}  // namespace lighthouse::dist
