// CPU reference kernels: plain loops written straight from SPEC.md, the oracle every fast
// path is tested against. Inputs are contiguous float32 or float64 tensors (the ops layer
// upcasts bf16/fp16); outputs have the input's dtype unless stated.
#pragma once

#include <ATen/ATen.h>

#include "lighthouse/config.h"

namespace lighthouse::cpu {

// Stage 1 + norm scores (SPEC.md §3-§4). x: [B, N, Hx, D].
// pyramid: [B, P1, Hx, D], levels >= 1 concatenated (level l at rows off(l) - N).
// score:   [B, Hx, P] float32, level-0 norms and their window maxima.
at::Tensor pool(const at::Tensor& x, const Geometry& g);
at::Tensor score(const at::Tensor& x, const Geometry& g);
// Fills levels >= 1 of one head's scores s [P] (level 0 given) with the maxima of their
// windows (NaN wins), the coarsening shared by every scorer.
void max_pool_levels(float* s, const Geometry& g);

// Dilated scores (SPEC.md §4): q [B, N, H, D], k and v [B, N, Hkv, D] -> sq, sk [B, H, P]
// float32. Level 0 is the norm of causal attention inside the `dilation` strided
// sub-sequences, sq from Attn(Q_h, K_g, V_g), sk from Attn(K_g, Q_h, V_g) (query and key
// roles swapped), g = h / (H / Hkv); coarser levels max-pool. Computed in x's dtype.
std::tuple<at::Tensor, at::Tensor> dilated_score(const at::Tensor& q, const at::Tensor& k,
                                                 const at::Tensor& v, int64_t dilation,
                                                 const Geometry& g);

// Stage 2 cascade + post-order slot table (SPEC.md §4-§5; the causal rule of §12).
// sq: [B, H, P] float32, sk: [B, Hkv, P] float32 -> slots [B, H, S], inverse [B, H, P] int64.
// prev_sq [B, H, L-1], prev_sk [B, Hkv, L-1] (causal only, both or neither): the halo of
// SPEC.md §10, the scores of the window before position 0 at every level >= 1.
std::tuple<at::Tensor, at::Tensor> select(const at::Tensor& sq, const at::Tensor& sk,
                                          const Geometry& g,
                                          Selection selection = Selection::Stratified,
                                          const at::Tensor& prev_sq = at::Tensor(),
                                          const at::Tensor& prev_sk = at::Tensor());

// Gather (SPEC.md §5): x [B, N, Hx, D], pyramid [B, P1, Hx, D], slots [B, H, S] -> [B, H, S, D].
at::Tensor gather(const at::Tensor& x, const at::Tensor& pyramid, const at::Tensor& slots,
                  const Geometry& g);
// Its backward (SPEC.md §7): grad [B, H, S, D], inverse [B, H, P] -> dx [B, N, Hx, D],
// summed over the query heads of each KV head.
at::Tensor gather_backward(const at::Tensor& grad, const at::Tensor& inverse, int64_t kv_heads,
                           const Geometry& g);

// Scatter back (SPEC.md §6): o_tilde [B, H, S, D], inverse [B, H, P] -> o [B, N, H, D].
at::Tensor scatter(const at::Tensor& o_tilde, const at::Tensor& inverse, const Geometry& g);
// Its backward (SPEC.md §7): grad [B, N, H, D], slots [B, H, S] -> [B, H, S, D].
at::Tensor scatter_backward(const at::Tensor& grad, const at::Tensor& slots, const Geometry& g);

}  // namespace lighthouse::cpu
