// The two halves of attention(q, k, v, plan, cfg) (lighthouse.h) for callers that run the
// inner causal SDPA themselves (as context parallel does with ring attention over ranks,
// src/dist/context_parallel.h, from the stage ops of lighthouse/stages.h):
//   attention(q, k, v, plan, cfg) == scatter(causal_sdpa(gather(q, k, v, plan, cfg)), plan, cfg)
// Both go through registered `lighthouse::` ops and are differentiable.
#pragma once

#include "lighthouse/lighthouse.h"

namespace lighthouse {

struct SubSequence {
  at::Tensor q, k, v;  // [B, H, S, D] each: the pyramid values of every slot (SPEC.md §5)
};

// Pyramid and gather of every slot of `plan`; check_plan as in attention(..., plan, ...).
SubSequence gather(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                   const Plan& plan, const Config& cfg, bool check_plan = true);

// The sub-sequence outputs o_tilde [B, H, S, D] summed back to [B, N, H, D] (SPEC.md §6),
// N from the plan's inverse table.
at::Tensor scatter(const at::Tensor& o_tilde, const Plan& plan, const Config& cfg);

}  // namespace lighthouse
