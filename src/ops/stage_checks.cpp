// Argument checks of the stage ops: stage_impls.h runs them before the CPU, CUDA and Meta
// backends alike, so every device rejects the same arguments with the same message.
// Each returns the geometry the kernels need.
#include <c10/util/Exception.h>

#include "ops/stages.h"

namespace lighthouse::ops {
namespace {

void check_x(const at::Tensor& x, const char* op) {
  TORCH_CHECK_VALUE(x.dim() == 4 && dim_numel(x) > 0, op,
                    ": x must be non-empty [B, N, Hx, D], got ", x.sym_sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(x.scalar_type()), op, ": x must be floating point, got ",
                   x.scalar_type());
}

void check_index(const at::Tensor& t, const at::Tensor& like, const char* name, const char* op) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kLong, op, ": ", name, " must be int64, got ",
                   t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == like.device(), op, ": ", name, " must be on device ",
                    like.device(), ", got ", t.device());
}

// q, k and v of an op that needs all three (v required), then their level geometry.
Geometry check_qkv_levels(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          int64_t levels, int64_t pool, const char* op) {
  TORCH_CHECK_VALUE(v.defined(), op, ": v must be a defined tensor [B, N, Hkv, D]");
  check_qkv(q, k, v, op);
  return checked_levels(levels, pool, dim_size(q, 1));
}

}  // namespace

Geometry check_pool_score(const at::Tensor& x, int64_t levels, int64_t pool) {
  check_x(x, "lighthouse::_pool_score");
  return checked_levels(levels, pool, dim_size(x, 1));
}

Geometry check_pool_score_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              int64_t levels, int64_t pool) {
  return check_qkv_levels(q, k, v, levels, pool, "lighthouse::_pool_score_qkv");
}

Geometry check_dilated_score(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             int64_t levels, int64_t pool, int64_t dilation) {
  const char* op = "lighthouse::_dilated_score";
  const Geometry g = check_qkv_levels(q, k, v, levels, pool, op);
  TORCH_CHECK_VALUE(dilation >= 1, op, ": dilation (delta) must be >= 1, got ", dilation);
  return g;
}

Geometry check_select(const at::Tensor& sq, const at::Tensor& sk, const Config& cfg,
                      const at::Tensor& prev_sq, const at::Tensor& prev_sk) {
  TORCH_CHECK_TYPE(sq.scalar_type() == at::kFloat && sk.scalar_type() == at::kFloat,
                   "lighthouse::_select: sq and sk must be float32, got ", sq.scalar_type(),
                   " and ", sk.scalar_type());
  TORCH_CHECK_VALUE(sq.dim() == 3 && sk.dim() == 3 && dim_size(sq, 0) == dim_size(sk, 0) &&
                        dim_size(sq, 2) == dim_size(sk, 2) && dim_size(sk, 1) > 0 &&
                        dim_size(sq, 1) > 0 && dim_size(sq, 1) % dim_size(sk, 1) == 0,
                    "lighthouse::_select: sq must be [B, H, P] and sk [B, Hkv, P] with "
                    "H % Hkv == 0, got ",
                    sq.sym_sizes(), " and ", sk.sym_sizes());
  TORCH_CHECK_VALUE(sk.device() == sq.device(), "lighthouse::_select: sk must be on sq's device ",
                    sq.device(), ", got ", sk.device());
  const Geometry lv =
      levels_from_pyramid(cfg.levels, cfg.pool, dim_size(sq, 2), "lighthouse::_select sq");
  if (prev_sq.defined() || prev_sk.defined()) {
    TORCH_CHECK_VALUE(prev_sq.defined() && prev_sk.defined(),
                      "lighthouse::_select: prev_sq and prev_sk (the halo of the previous chunk) "
                      "must be given together, got only ",
                      prev_sq.defined() ? "prev_sq" : "prev_sk");
    TORCH_CHECK_VALUE(cfg.selection == Selection::Causal,
                      "lighthouse::_select: prev_sq and prev_sk are read by the causal selection "
                      "only (SPEC.md §12), got selection \"",
                      selection_name(cfg.selection), "\"");
    const int64_t B = dim_size(sq, 0), L1 = cfg.levels - 1;
    for (const auto& [t, heads, name, head_name] :
         {std::tuple{&prev_sq, dim_size(sq, 1), "prev_sq", "H"},
          std::tuple{&prev_sk, dim_size(sk, 1), "prev_sk", "Hkv"}}) {
      TORCH_CHECK_TYPE(t->scalar_type() == at::kFloat, "lighthouse::_select: ", name,
                       " must be float32, got ", t->scalar_type());
      TORCH_CHECK_VALUE(t->dim() == 3 && dim_size(*t, 0) == B && dim_size(*t, 1) == heads &&
                            dim_size(*t, 2) == L1,
                        "lighthouse::_select: ", name, " must be [B, ", head_name,
                        ", levels - 1] = [", B, ", ", heads, ", ",
                        L1, "], got ", t->sym_sizes());
      TORCH_CHECK_VALUE(t->device() == sq.device(), "lighthouse::_select: ", name,
                        " must be on sq's device ", sq.device(), ", got ", t->device());
    }
  }
  return checked_geometry(cfg, lv.N);
}

Geometry check_gather(const at::Tensor& x, const at::Tensor& pyramid, const at::Tensor& slots,
                      const at::Tensor& inverse, int64_t levels, int64_t pool) {
  const char* op = "lighthouse::_gather";
  check_x(x, op);
  const Geometry g = checked_levels(levels, pool, dim_size(x, 1));
  TORCH_CHECK_VALUE(pyramid.dim() == 4 && dim_size(pyramid, 0) == dim_size(x, 0) &&
                        dim_size(pyramid, 1) == g.P1 && dim_size(pyramid, 2) == dim_size(x, 2) &&
                        dim_size(pyramid, 3) == dim_size(x, 3),
                    op, ": pyramid must be [B, P1, Hx, D] = [", dim_size(x, 0), ", ", g.P1, ", ",
                    dim_size(x, 2), ", ", dim_size(x, 3), "], got ", pyramid.sym_sizes());
  TORCH_CHECK_TYPE(pyramid.scalar_type() == x.scalar_type(), op, ": pyramid dtype must equal x's ",
                   x.scalar_type(), ", got ", pyramid.scalar_type());
  check_index(slots, x, "slots", op);
  check_index(inverse, x, "inverse", op);
  TORCH_CHECK_VALUE(slots.dim() == 3 && dim_size(slots, 0) == dim_size(x, 0) &&
                        dim_size(slots, 1) > 0 && dim_size(slots, 1) % dim_size(x, 2) == 0,
                    op, ": slots must be [B, H, S] with H a multiple of x's heads ", dim_size(x, 2),
                    ", got ", slots.sym_sizes());
  TORCH_CHECK_VALUE(inverse.dim() == 3 && dim_size(inverse, 0) == dim_size(x, 0) &&
                        dim_size(inverse, 1) == dim_size(slots, 1) && dim_size(inverse, 2) == g.P,
                    op, ": inverse must be [B, H, P] = [", dim_size(x, 0), ", ", dim_size(slots, 1),
                    ", ", g.P, "], got ", inverse.sym_sizes());
  return g;
}

namespace {

Geometry gather_backward_geometry(const at::Tensor& grad, const at::Tensor& inverse,
                                  int64_t levels, int64_t pool, int64_t kv_heads, const char* op) {
  TORCH_CHECK_VALUE(
      grad.dim() == 4 && inverse.dim() == 3 && kv_heads > 0 && dim_size(grad, 1) % kv_heads == 0 &&
          dim_size(inverse, 0) == dim_size(grad, 0) && dim_size(inverse, 1) == dim_size(grad, 1),
      op, ": need grad [B, H, S, D], inverse [B, H, P], H % kv_heads == 0; got ", grad.sym_sizes(),
      ", ", inverse.sym_sizes(), ", kv_heads = ", kv_heads);
  check_index(inverse, grad, "inverse", op);
  return levels_from_pyramid(levels, pool, dim_size(inverse, 2), op);
}

}  // namespace

Geometry check_gather_backward(const at::Tensor& grad, const at::Tensor& inverse, int64_t levels,
                               int64_t pool, int64_t kv_heads) {
  return gather_backward_geometry(grad, inverse, levels, pool, kv_heads,
                                  "lighthouse::_gather_backward");
}

Geometry check_gather_backward_qkv(const at::Tensor& grad_q, const at::Tensor& grad_k,
                                   const at::Tensor& grad_v, const at::Tensor& inverse,
                                   int64_t levels, int64_t pool, int64_t kv_heads) {
  const char* op = "lighthouse::_gather_backward_qkv";
  const std::pair<const at::Tensor*, const char*> kv[] = {{&grad_k, "grad_k"}, {&grad_v, "grad_v"}};
  for (const auto& [t, name] : kv) {
    TORCH_CHECK_VALUE(t->sym_sizes() == grad_q.sym_sizes(), op, ": ", name,
                      " must have grad_q's shape ", grad_q.sym_sizes(), ", got ", t->sym_sizes());
    TORCH_CHECK_TYPE(t->scalar_type() == grad_q.scalar_type(), op, ": ", name,
                     " must have grad_q's dtype ", grad_q.scalar_type(), ", got ",
                     t->scalar_type());
    TORCH_CHECK_VALUE(t->device() == grad_q.device(), op, ": ", name,
                      " must be on grad_q's device ", grad_q.device(), ", got ", t->device());
  }
  return gather_backward_geometry(grad_k, inverse, levels, pool, kv_heads, op);
}

Geometry check_scatter(const at::Tensor& o_tilde, const at::Tensor& slots,
                       const at::Tensor& inverse, int64_t levels, int64_t pool) {
  const char* op = "lighthouse::_scatter";
  TORCH_CHECK_VALUE(o_tilde.dim() == 4 && inverse.dim() == 3 &&
                        dim_size(inverse, 0) == dim_size(o_tilde, 0) &&
                        dim_size(inverse, 1) == dim_size(o_tilde, 1),
                    op, ": need o_tilde [B, H, S, D], inverse [B, H, P]; got ", o_tilde.sym_sizes(),
                    ", ", inverse.sym_sizes());
  TORCH_CHECK_VALUE(slots.dim() == 3 && dim_size(slots, 2) == dim_size(o_tilde, 2), op,
                    ": slots must be [B, H, S] with S = ", dim_size(o_tilde, 2), ", got ",
                    slots.sym_sizes());
  check_index(inverse, o_tilde, "inverse", op);
  check_index(slots, o_tilde, "slots", op);
  return levels_from_pyramid(levels, pool, dim_size(inverse, 2), op);
}

Geometry check_scatter_backward(const at::Tensor& grad, const at::Tensor& slots, int64_t levels,
                                int64_t pool) {
  const char* op = "lighthouse::_scatter_backward";
  TORCH_CHECK_VALUE(grad.dim() == 4 && slots.dim() == 3 &&
                        dim_size(slots, 0) == dim_size(grad, 0) &&
                        dim_size(slots, 1) == dim_size(grad, 2),
                    op, ": need grad [B, N, H, D], slots [B, H, S]; got ", grad.sym_sizes(), ", ",
                    slots.sym_sizes());
  check_index(slots, grad, "slots", op);
  return checked_levels(levels, pool, dim_size(grad, 1));
}

}  // namespace lighthouse::ops
