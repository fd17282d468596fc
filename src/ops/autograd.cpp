// Autograd for the differentiable stage ops (_gather, _gather_qkv, _scatter), registered once in
// C++ (Autograd key), so C++ and Python callers get the same gradients. The selection carries no gradient: slots
// and inverse are constants, and the pyramid argument of _gather is a cache of x's means
// (its gradient reaches x through _gather_backward, SPEC.md §7).
#include <torch/autograd.h>
#include <torch/library.h>

#include "ops/stages.h"

namespace lighthouse::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the gathers' backward needs: the inverse table, the level geometry and x's head count.
void save_gather_plan(AutogradContext* ctx, const at::Tensor& inverse, int64_t levels,
                      int64_t pool, int64_t kv_heads) {
  ctx->save_for_backward({inverse});
  ctx->saved_data["levels"] = levels;
  ctx->saved_data["pool"] = pool;
  ctx->saved_data["kv_heads"] = kv_heads;
}

struct GatherPlan {
  at::Tensor inverse;
  int64_t levels, pool, kv_heads;
};

GatherPlan saved_gather_plan(AutogradContext* ctx) {
  return {ctx->get_saved_variables()[0], ctx->saved_data["levels"].toInt(),
          ctx->saved_data["pool"].toInt(), ctx->saved_data["kv_heads"].toInt()};
}

class GatherFn : public torch::autograd::Function<GatherFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& pyramid,
                            const at::Tensor& slots, const at::Tensor& inverse, int64_t levels,
                            int64_t pool) {
    at::AutoDispatchBelowADInplaceOrView guard;
    save_gather_plan(ctx, inverse, levels, pool, dim_size(x, 2));
    return gather(x, pyramid, slots, inverse, levels, pool);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const GatherPlan pl = saved_gather_plan(ctx);
    at::Tensor dx =
        gather_backward(grads[0].contiguous(), pl.inverse, pl.levels, pl.pool, pl.kv_heads);
    return {dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// q, k and v gathered in one op, so that their gradients come back in one _gather_backward_qkv
// (one launch on CUDA: the slot lookups are shared).
class GatherQkvFn : public torch::autograd::Function<GatherQkvFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                               const at::Tensor& v, const at::Tensor& pyr_q,
                               const at::Tensor& pyr_k, const at::Tensor& pyr_v,
                               const at::Tensor& slots, const at::Tensor& inverse, int64_t levels,
                               int64_t pool) {
    at::AutoDispatchBelowADInplaceOrView guard;
    save_gather_plan(ctx, inverse, levels, pool, dim_size(k, 2));
    auto [qt, kt, vt] = gather_qkv(q, k, v, pyr_q, pyr_k, pyr_v, slots, inverse, levels, pool);
    return {qt, kt, vt};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const GatherPlan pl = saved_gather_plan(ctx);
    auto [dq, dk, dv] =
        gather_backward_qkv(grads[0].contiguous(), grads[1].contiguous(), grads[2].contiguous(),
                            pl.inverse, pl.levels, pl.pool, pl.kv_heads);
    const at::Tensor none;
    return {dq, dk, dv, none, none, none, none, none, none, none};
  }
};

class ScatterFn : public torch::autograd::Function<ScatterFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& o_tilde,
                            const at::Tensor& slots, const at::Tensor& inverse, int64_t levels,
                            int64_t pool) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({slots});
    ctx->saved_data["levels"] = levels;
    ctx->saved_data["pool"] = pool;
    return scatter(o_tilde, slots, inverse, levels, pool);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor slots = ctx->get_saved_variables()[0];
    at::Tensor d = scatter_backward(grads[0].contiguous(), slots,
                                    ctx->saved_data["levels"].toInt(),
                                    ctx->saved_data["pool"].toInt());
    return {d, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor gather_autograd(const at::Tensor& x, const at::Tensor& pyramid, const at::Tensor& slots,
                           const at::Tensor& inverse, int64_t levels, int64_t pool) {
  return GatherFn::apply(x, pyramid.detach(), slots, inverse, levels, pool);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gather_qkv_autograd(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& pyr_q,
    const at::Tensor& pyr_k, const at::Tensor& pyr_v, const at::Tensor& slots,
    const at::Tensor& inverse, int64_t levels, int64_t pool) {
  const variable_list out = GatherQkvFn::apply(q, k, v, pyr_q.detach(), pyr_k.detach(),
                                               pyr_v.detach(), slots, inverse, levels, pool);
  return {out[0], out[1], out[2]};
}

// Below autograd on every backend: the three single ops (CUDA registers a fused
// _gather_backward_qkv of its own, cuda_impl.cpp).
std::tuple<at::Tensor, at::Tensor, at::Tensor> gather_qkv_default(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& pyr_q,
    const at::Tensor& pyr_k, const at::Tensor& pyr_v, const at::Tensor& slots,
    const at::Tensor& inverse, int64_t levels, int64_t pool) {
  return {gather(q, pyr_q, slots, inverse, levels, pool),   // [B, H, S, D]
          gather(k, pyr_k, slots, inverse, levels, pool),   // [B, H, S, D]
          gather(v, pyr_v, slots, inverse, levels, pool)};  // [B, H, S, D]
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gather_backward_qkv_default(
    const at::Tensor& grad_q, const at::Tensor& grad_k, const at::Tensor& grad_v,
    const at::Tensor& inverse, int64_t levels, int64_t pool, int64_t kv_heads) {
  check_gather_backward_qkv(grad_q, grad_k, grad_v, inverse, levels, pool, kv_heads);
  return {gather_backward(grad_q, inverse, levels, pool, dim_size(grad_q, 1)),  // [B, N, H, D]
          gather_backward(grad_k, inverse, levels, pool, kv_heads),  // [B, N, Hkv, D]
          gather_backward(grad_v, inverse, levels, pool, kv_heads)};  // [B, N, Hkv, D]
}

at::Tensor scatter_autograd(const at::Tensor& o_tilde, const at::Tensor& slots,
                            const at::Tensor& inverse, int64_t levels, int64_t pool) {
  return ScatterFn::apply(o_tilde, slots, inverse, levels, pool);
}

// The selection stages produce no gradient: run them below autograd, outputs detached.
std::tuple<at::Tensor, at::Tensor> pool_score_autograd(const at::Tensor& x, int64_t levels,
                                                       int64_t pool, bool want_pyramid,
                                                       bool want_score) {
  at::AutoDispatchBelowADInplaceOrView guard;
  return pool_score(x, levels, pool, want_pyramid, want_score);
}

using Tensor5 = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

Tensor5 pool_score_qkv_autograd(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                int64_t levels, int64_t pool, bool want_score) {
  at::AutoDispatchBelowADInplaceOrView guard;
  return pool_score_qkv(q, k, v, levels, pool, want_score);
}

// Below autograd on every backend: the three single ops (CUDA registers one launch of its
// own, cuda_impl.cpp).
Tensor5 pool_score_qkv_default(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               int64_t levels, int64_t pool, bool want_score) {
  check_pool_score_qkv(q, k, v, levels, pool);
  auto [pyr_q, sq] = pool_score(q, levels, pool, true, want_score);  // [B, P1, H, D], [B, H, P]
  auto [pyr_k, sk] = pool_score(k, levels, pool, true, want_score);  // [B, P1, Hkv, D], [B, Hkv, P]
  at::Tensor pyr_v = std::get<0>(pool_score(v, levels, pool, true, false));  // [B, P1, Hkv, D]
  return {pyr_q, pyr_k, pyr_v, sq, sk};
}

std::tuple<at::Tensor, at::Tensor> dilated_score_autograd(const at::Tensor& q,
                                                          const at::Tensor& k,
                                                          const at::Tensor& v, int64_t levels,
                                                          int64_t pool, int64_t dilation) {
  at::AutoDispatchBelowADInplaceOrView guard;
  return dilated_score(q, k, v, levels, pool, dilation);
}

std::tuple<at::Tensor, at::Tensor> select_autograd(const at::Tensor& sq, const at::Tensor& sk,
                                                   int64_t levels, int64_t pool, int64_t topk,
                                                   int64_t tile_topk, c10::string_view selection,
                                                   const std::optional<at::Tensor>& prev_sq,
                                                   const std::optional<at::Tensor>& prev_sk) {
  at::AutoDispatchBelowADInplaceOrView guard;
  Config cfg;
  cfg.levels = levels;
  cfg.pool = pool;
  cfg.topk = topk;
  cfg.tile_topk = tile_topk;
  std::string err;
  cfg.selection = parse_selection(std::string(selection), &err);
  TORCH_CHECK_VALUE(err.empty(), err);
  return select(sq, sk, cfg, prev_sq.value_or(at::Tensor()), prev_sk.value_or(at::Tensor()));
}

}  // namespace

TORCH_LIBRARY_IMPL(lighthouse, Autograd, m) {
  m.impl("_gather", &gather_autograd);
  m.impl("_gather_qkv", &gather_qkv_autograd);
  m.impl("_scatter", &scatter_autograd);
  m.impl("_pool_score", &pool_score_autograd);
  m.impl("_pool_score_qkv", &pool_score_qkv_autograd);
  m.impl("_dilated_score", &dilated_score_autograd);
  m.impl("_select", &select_autograd);
}

TORCH_LIBRARY_IMPL(lighthouse, CompositeExplicitAutograd, m) {
  m.impl("_gather_qkv", &gather_qkv_default);
  m.impl("_gather_backward_qkv", &gather_backward_qkv_default);
  m.impl("_pool_score_qkv", &pool_score_qkv_default);
}

}  // namespace lighthouse::ops
