// The public ops, composed from the stage ops and stock SDPA (CompositeImplicitAutograd):
// autograd comes from _gather_qkv/_scatter (autograd.cpp) and from SDPA itself.
#include <torch/library.h>

#include "ops/stages.h"

namespace lighthouse::ops {
namespace {

// [B, N, H, D] -> [B, H, N, D] view and back.
at::Tensor heads_first(const at::Tensor& x) { return x.transpose(1, 2); }

// The checks every selecting op starts with: tensors, config, v present for the dilated
// scorer, and the geometry at this N.
Config checked_config(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                      int64_t levels, int64_t pool, int64_t topk, int64_t tile_topk,
                      c10::string_view scorer, c10::string_view sdpa, int64_t dilation,
                      c10::string_view selection, const char* op) {
  check_qkv(q, k, v, op);
  const Config cfg =
      config_from_args(levels, pool, topk, tile_topk, scorer, sdpa, dilation, selection);
  TORCH_CHECK_VALUE(cfg.scorer != Scorer::Dilated || v.defined(), op,
                    ": v must be given for scorer \"dilated\" (its scores attend over v): pass "
                    "v [B, N, Hkv, D]");
  checked_geometry(cfg, dim_size(q, 1));
  return cfg;
}

std::tuple<at::Tensor, at::Tensor> plan_op(const at::Tensor& q, const at::Tensor& k,
                                           int64_t levels, int64_t pool, int64_t topk,
                                           int64_t tile_topk, c10::string_view scorer,
                                           const std::optional<at::Tensor>& v_opt,
                                           int64_t dilation, c10::string_view selection) {
  const at::Tensor v = v_opt.value_or(at::Tensor());
  const Config cfg = checked_config(q, k, v, levels, pool, topk, tile_topk, scorer, "auto",
                                    dilation, selection, "lighthouse::plan");
  if (cfg.scorer == Scorer::Dilated) {
    auto [sq, sk] = dilated_score(q, k, v, levels, pool, dilation);  // [B, H, P] each
    return select(sq, sk, cfg);
  }
  const at::Tensor sq = std::get<1>(pool_score(q, levels, pool, false, true));  // [B, H, P]
  const at::Tensor sk = std::get<1>(pool_score(k, levels, pool, false, true));  // [B, Hkv, P]
  return select(sq, sk, cfg);
}

// Everything after the selection. pyr_* are the levels >= 1 of q, k, v.
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& pyr_q, const at::Tensor& pyr_k, const at::Tensor& pyr_v,
                  const at::Tensor& slots, const at::Tensor& inverse, int64_t levels,
                  int64_t pool, SdpaBackend backend) {
  auto [qt, kt, vt] = gather_qkv(q, k, v, pyr_q, pyr_k, pyr_v, slots, inverse, levels,
                                 pool);                // [B, H, S, D] each
  at::Tensor ot = sdpa_causal(qt, kt, vt, backend);    // [B, H, S, D]
  return scatter(ot, slots, inverse, levels, pool);    // [B, N, H, D]
}

at::Tensor attention_op(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        int64_t levels, int64_t pool, int64_t topk, int64_t tile_topk,
                        c10::string_view scorer, c10::string_view sdpa, int64_t dilation,
                        c10::string_view selection) {
  const Config cfg = checked_config(q, k, v, levels, pool, topk, tile_topk, scorer, sdpa,
                                    dilation, selection, "lighthouse::attention");
  const bool norm = cfg.scorer == Scorer::Norm;  // the norm scores come with the pyramid pass
  // [B, P1, H, D], [B, P1, Hkv, D] x 2; [B, H, P], [B, Hkv, P] (empty unless norm)
  auto [pyr_q, pyr_k, pyr_v, sq, sk] = pool_score_qkv(q, k, v, levels, pool, norm);
  if (!norm) std::tie(sq, sk) = dilated_score(q, k, v, levels, pool, dilation);  // [B, H, P] x 2
  auto [slots, inverse] = select(sq, sk, cfg);
  return attend(q, k, v, pyr_q, pyr_k, pyr_v, slots, inverse, levels, pool, cfg.backend);
}

// A user plan checked against q's geometry (values too unless lighthouse::plan just made it:
// then no check and, on CUDA, no host sync) and the pyramids of q, k and v it indexes.
struct PlannedInputs {
  at::Tensor slots;                // [B, H, S]
  at::Tensor pyr_q, pyr_k, pyr_v;  // [B, P1, H or Hkv, D]
};

PlannedInputs planned_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& slots, const at::Tensor& inverse, int64_t levels,
                             int64_t pool, bool validate_values) {
  check_plan(q, slots, inverse, checked_levels(levels, pool, dim_size(q, 1)));
  auto pyr = pool_score_qkv(q, k, v, levels, pool, false);  // [B, P1, H or Hkv, D] x 3
  return {validate_values ? check_plan_values(slots, inverse) : slots, std::get<0>(pyr),
          std::get<1>(pyr), std::get<2>(pyr)};
}

at::Tensor attention_with_plan_op(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const at::Tensor& slots, const at::Tensor& inverse,
                                  int64_t levels, int64_t pool, c10::string_view sdpa,
                                  bool validate_values) {
  check_qkv(q, k, v, "lighthouse::attention_with_plan");
  const SdpaBackend backend = backend_from_arg(sdpa);
  const PlannedInputs in = planned_inputs(q, k, v, slots, inverse, levels, pool, validate_values);
  return attend(q, k, v, in.pyr_q, in.pyr_k, in.pyr_v, in.slots, inverse, levels, pool, backend);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gather_subsequence_op(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& slots,
    const at::Tensor& inverse, int64_t levels, int64_t pool, bool validate_values) {
  check_qkv(q, k, v, "lighthouse::gather_subsequence");
  const PlannedInputs in = planned_inputs(q, k, v, slots, inverse, levels, pool, validate_values);
  return gather_qkv(q, k, v, in.pyr_q, in.pyr_k, in.pyr_v, in.slots, inverse, levels,
                    pool);  // [B, H, S, D] each
}

at::Tensor scatter_subsequence_op(const at::Tensor& o_tilde, const at::Tensor& slots,
                                  const at::Tensor& inverse, int64_t levels, int64_t pool) {
  return scatter(o_tilde, slots, inverse, levels, pool);  // [B, N, H, D]
}

at::Tensor dense_attention_op(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              c10::string_view sdpa) {
  check_qkv(q, k, v, "lighthouse::dense_attention");
  at::Tensor o = sdpa_causal(heads_first(q), heads_first(k), heads_first(v),
                             backend_from_arg(sdpa));  // [B, H, N, D]
  return heads_first(o).contiguous();                  // [B, N, H, D]
}

}  // namespace

TORCH_LIBRARY_IMPL(lighthouse, CompositeImplicitAutograd, m) {
  m.impl("plan", &plan_op);
  m.impl("attention", &attention_op);
  m.impl("attention_with_plan", &attention_with_plan_op);
  m.impl("dense_attention", &dense_attention_op);
  m.impl("gather_subsequence", &gather_subsequence_op);
  m.impl("scatter_subsequence", &scatter_subsequence_op);
}

}  // namespace lighthouse::ops
