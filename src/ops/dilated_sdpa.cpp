// The dilated scorer (SPEC.md §4) with stock SDPA on strided views: the CUDA implementation
// of _dilated_score. It is device-agnostic ATen, so the CPU tests check its views and head
// mapping against the plain-loop reference (src/cpu/dilated_score.cpp).
//
// The δ strided sub-sequences of x [B, N, Hx, D] are one view x.view(B, N/δ, δ·Hx, D): head
// r·Hx + h holds positions t = j·δ + r of head h (no copy for contiguous inputs). So each
// score is one batched causal SDPA call over δ·H heads. In the swapped call the keys are the
// H query heads, so K and V need H heads there: under GQA they are repeated once
// (repeat_interleave maps head r·Hkv + g to r·H + g·G + j, i.e. query head h to KV head
// h / G) and that one copy serves both calls, so every stock kernel sees equal head counts.
// When δ does not divide N the inputs are zero-padded to the next multiple (one copy): each
// padded position is the last of its sub-sequence, so under the causal mask no real position
// attends to it, and its norm is dropped before the levels are pooled.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <vector>

#include "ops/stages.h"

namespace lighthouse::ops {
namespace {

// [B, N, Hx, D] -> [B, δ·Hx, N'/δ, D], N' = N rounded up to a multiple of δ (a view when δ
// divides N and the strides allow, else one copy).
at::Tensor strided_heads(const at::Tensor& x, int64_t dilation) {
  const int64_t B = x.size(0), N = x.size(1), Hx = x.size(2), D = x.size(3);
  const int64_t n = (N + dilation - 1) / dilation;
  const at::Tensor padded =
      n * dilation == N ? x : at::constant_pad_nd(x, {0, 0, 0, 0, 0, n * dilation - N});
  return padded.reshape({B, n, dilation * Hx, D}).transpose(1, 2);
}

// o [B, δ·H, N'/δ, D] -> fp32 norms [B, H, N] in base-position order (padding dropped).
at::Tensor position_norms(const at::Tensor& o, int64_t dilation, int64_t N) {
  const int64_t B = o.size(0), H = o.size(1) / dilation, n = o.size(2);
  const at::Tensor norms =
      o.scalar_type() == at::kDouble
          ? at::linalg_vector_norm(o, 2, {-1}).to(at::kFloat)
          : at::linalg_vector_norm(o, 2, {-1}, false, at::kFloat);  // [B, δ·H, N/δ]
  return norms.view({B, dilation, H, n})
      .permute({0, 2, 3, 1})
      .reshape({B, H, n * dilation})
      .narrow(2, 0, N);
}

// s0 [B, H, N] -> [B, H, P]: level 0 and the window maxima of every coarser level over the
// pyramid's prefix Nf (NaN wins, as in the CPU reference).
at::Tensor with_max_levels(const at::Tensor& s0, const Geometry& g) {
  std::vector<at::Tensor> levels{s0};
  for (int64_t l = 1; l < g.L; ++l) {
    const at::Tensor prev = levels.back().narrow(2, 0, g.level_len[l] * g.p);
    levels.push_back(prev.reshape({s0.size(0), s0.size(1), g.level_len[l], g.p}).amax(-1));
  }
  return at::cat(levels, 2).contiguous();
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> dilated_score_sdpa(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& v, int64_t dilation,
                                                      const Geometry& g) {
  const at::NoGradGuard no_grad;  // scores carry no gradient
  const int64_t group = q.size(2) / k.size(2);
  const at::Tensor qs = strided_heads(q, dilation);  // [B, δ·H, N/δ, D]
  const at::Tensor ks = strided_heads(k, dilation);  // [B, δ·Hkv, N/δ, D]
  const at::Tensor vs = strided_heads(v, dilation);  // [B, δ·Hkv, N/δ, D]
  const at::Tensor kq = group == 1 ? ks : ks.repeat_interleave(group, 1);  // [B, δ·H, N/δ, D]
  const at::Tensor vq = group == 1 ? vs : vs.repeat_interleave(group, 1);  // [B, δ·H, N/δ, D]
  const at::Tensor oq = sdpa_causal(qs, kq, vq, SdpaBackend::Auto);  // Attn(Q, K, V)
  const at::Tensor ok = sdpa_causal(kq, qs, vq, SdpaBackend::Auto);  // Attn(K, Q, V)
  return {with_max_levels(position_norms(oq, dilation, g.N), g),
          with_max_levels(position_norms(ok, dilation, g.N), g)};
}

}  // namespace lighthouse::ops
