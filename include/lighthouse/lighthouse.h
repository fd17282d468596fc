// Public C++ API of the Lighthouse op. Every function goes through the registered
// `lighthouse::` torch ops, so C++ and Python callers share kernels and autograd.
//
// Layout: q [B, N, H, D], k and v [B, N, Hkv, D] with H % Hkv == 0; output [B, N, H, D].
#pragma once

#include <torch/types.h>

#include "lighthouse/config.h"

namespace lighthouse {

// The selection of SPEC.md §4-§5 for one input: slot table and its inverse.
struct Plan {
  at::Tensor slots;    // [B, H, S] int64: pyramid index off(l) + i of every slot, in slot order
  at::Tensor inverse;  // [B, H, P] int64: slot of every pyramid index, or -1 if not emitted
};

// Selection only (no gradient). Reads q and k, and v for the dilated scorer (whose scores
// attend over v; an undefined v is then an error naming v).
Plan plan(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const Config& cfg);
// The same without v (the norm scorer).
Plan plan(const at::Tensor& q, const at::Tensor& k, const Config& cfg);

// Lighthouse attention, differentiable with respect to q, k and v.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const Config& cfg);

// Same with a precomputed (fixed) plan: gradients flow through pooling, gather, the inner
// SDPA and the scatter, never through the selection. The plan's values are validated (one
// host sync on CUDA) unless check_plan is false: only for a plan lighthouse::plan made for
// these q and k and nobody changed since.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const Plan& plan, const Config& cfg, bool check_plan = true);

// Ordinary causal SDPA on the full sequence (dense layers, the dense resume, baselines).
at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           SdpaBackend backend = SdpaBackend::Auto);

}  // namespace lighthouse
