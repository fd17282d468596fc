// The stage ops of the Lighthouse op, one call each (SPEC.md §3-§7): the pieces that
// lighthouse::attention composes, for benchmarks and tools that time or inspect a stage. Each
// goes through the dispatcher to the registered op (lighthouse::_pool_score, ...; the same ops
// Python reaches as torch.ops.lighthouse.*), so CPU, CUDA and Meta kernels alike; arguments are
// checked there, with messages naming them.
//
// Shapes (B batch, N positions, H query heads, Hx heads of x, D head dim, S slots per head,
// P = N + sum_{l>=1} Nf / p^l pyramid entries, P1 = P - N; any N, lighthouse/geometry.h):
//   pool_score(x [B, N, Hx, D]) -> pyramid [B, P1, Hx, D] (x's dtype), score [B, Hx, P] fp32
//   pool_score_qkv(q [B, N, H, D], k, v [B, N, Hkv, D]) -> pyr_q, pyr_k, pyr_v, sq, sk: the
//     pyramids of the three and the scores of q and k (empty unless want_score) as one op,
//     one launch on CUDA; each output bitwise equals pool_score's
//   dilated_score(q [B, N, H, D], k, v [B, N, Hkv, D]) -> sq, sk [B, H, P] fp32
//   select(sq [B, H, P], sk [B, Hkv, P], cfg) -> slots [B, H, S] int64, inverse [B, H, P] int64;
//     for the causal rule, optionally the halo of a sequence cut into chunks (SPEC.md §10):
//     prev_sq [B, H, L-1], prev_sk [B, Hkv, L-1] fp32, the scores at levels 1..L-1 of the window
//     just before position 0 (the previous chunk's last entries); undefined: none (chunk 0)
//   gather(x [B, N, Hx, D], pyramid, slots, inverse) -> [B, H, S, D]
//   gather_backward(grad [B, H, S, D], inverse, kv_heads) -> [B, N, kv_heads, D]
//   gather_qkv(q, k, v, their pyramids, slots, inverse) -> three [B, H, S, D]: the three gathers
//     as one op, whose gradient is gather_backward_qkv
//   gather_backward_qkv(grad_q, grad_k, grad_v [B, H, S, D], inverse, kv_heads) -> dq
//     [B, N, H, D], dk, dv [B, N, kv_heads, D]: the three gather_backward (one launch on CUDA)
//   scatter(o_tilde [B, H, S, D], slots, inverse) -> [B, N, H, D]
//   scatter_backward(grad [B, N, H, D], slots) -> [B, H, S, D]
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "lighthouse/config.h"

namespace lighthouse::stages {

std::tuple<at::Tensor, at::Tensor> pool_score(const at::Tensor& x, int64_t levels, int64_t pool,
                                              bool want_pyramid, bool want_score);
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> pool_score_qkv(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t levels, int64_t pool,
    bool want_score);
std::tuple<at::Tensor, at::Tensor> dilated_score(const at::Tensor& q, const at::Tensor& k,
                                                 const at::Tensor& v, int64_t levels,
                                                 int64_t pool, int64_t dilation);
std::tuple<at::Tensor, at::Tensor> select(const at::Tensor& sq, const at::Tensor& sk,
                                          const Config& cfg,
                                          const at::Tensor& prev_sq = at::Tensor(),
                                          const at::Tensor& prev_sk = at::Tensor());
at::Tensor gather(const at::Tensor& x, const at::Tensor& pyramid, const at::Tensor& slots,
                  const at::Tensor& inverse, int64_t levels, int64_t pool);
at::Tensor gather_backward(const at::Tensor& grad, const at::Tensor& inverse, int64_t levels,
                           int64_t pool, int64_t kv_heads);
std::tuple<at::Tensor, at::Tensor, at::Tensor> gather_qkv(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& pyr_q,
    const at::Tensor& pyr_k, const at::Tensor& pyr_v, const at::Tensor& slots,
    const at::Tensor& inverse, int64_t levels, int64_t pool);
std::tuple<at::Tensor, at::Tensor, at::Tensor> gather_backward_qkv(
    const at::Tensor& grad_q, const at::Tensor& grad_k, const at::Tensor& grad_v,
    const at::Tensor& inverse, int64_t levels, int64_t pool, int64_t kv_heads);
at::Tensor scatter(const at::Tensor& o_tilde, const at::Tensor& slots, const at::Tensor& inverse,
                   int64_t levels, int64_t pool);
at::Tensor scatter_backward(const at::Tensor& grad, const at::Tensor& slots, int64_t levels,
                            int64_t pool);
// Stock causal SDPA on [B, H, S, D] (k/v may have fewer heads: GQA), the op's inner SDPA.
at::Tensor sdpa_causal(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       SdpaBackend backend);

}  // namespace lighthouse::stages
