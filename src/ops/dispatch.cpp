// Typed dispatcher calls of the stage ops and the stock SDPA call (lighthouse/stages.h), and
// the plan check's.
#include "ops/handle.h"
#include "ops/stages.h"

namespace lighthouse::stages {

using ops::op_handle;

std::tuple<at::Tensor, at::Tensor> pool_score(const at::Tensor& x, int64_t levels, int64_t pool,
                                              bool want_pyramid, bool want_score) {
  static auto op = op_handle<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, int64_t, int64_t,
                                                             bool, bool)>("lighthouse::_pool_score");
  return op.call(x, levels, pool, want_pyramid, want_score);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> pool_score_qkv(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t levels, int64_t pool,
    bool want_score) {
  static auto op = op_handle<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t, bool)>(
      "lighthouse::_pool_score_qkv");
  return op.call(q, k, v, levels, pool, want_score);
}

std::tuple<at::Tensor, at::Tensor> dilated_score(const at::Tensor& q, const at::Tensor& k,
                                                 const at::Tensor& v, int64_t levels,
                                                 int64_t pool, int64_t dilation) {
  static auto op = op_handle<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t, int64_t)>(
      "lighthouse::_dilated_score");
  return op.call(q, k, v, levels, pool, dilation);
}

std::tuple<at::Tensor, at::Tensor> select(const at::Tensor& sq, const at::Tensor& sk,
                                          const Config& cfg, const at::Tensor& prev_sq,
                                          const at::Tensor& prev_sk) {
  static auto op = op_handle<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, int64_t, int64_t, int64_t, int64_t, c10::string_view,
      const std::optional<at::Tensor>&, const std::optional<at::Tensor>&)>("lighthouse::_select");
  const auto opt = [](const at::Tensor& t) {
    return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt;
  };
  return op.call(sq, sk, cfg.levels, cfg.pool, cfg.topk, cfg.tile_topk,
                 selection_name(cfg.selection), opt(prev_sq), opt(prev_sk));
}

at::Tensor gather(const at::Tensor& x, const at::Tensor& pyramid, const at::Tensor& slots,
                  const at::Tensor& inverse, int64_t levels, int64_t pool) {
  static auto op = op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const at::Tensor&, int64_t, int64_t)>("lighthouse::_gather");
  return op.call(x, pyramid, slots, inverse, levels, pool);
}

at::Tensor gather_backward(const at::Tensor& grad, const at::Tensor& inverse, int64_t levels,
                           int64_t pool, int64_t kv_heads) {
  static auto op = op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, int64_t,
                                     int64_t)>("lighthouse::_gather_backward");
  return op.call(grad, inverse, levels, pool, kv_heads);
}

using Tensor3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

Tensor3 gather_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                   const at::Tensor& pyr_q, const at::Tensor& pyr_k, const at::Tensor& pyr_v,
                   const at::Tensor& slots, const at::Tensor& inverse, int64_t levels,
                   int64_t pool) {
  static auto op = op_handle<Tensor3(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const at::Tensor&, const at::Tensor&, int64_t, int64_t)>(
      "lighthouse::_gather_qkv");
  return op.call(q, k, v, pyr_q, pyr_k, pyr_v, slots, inverse, levels, pool);
}

Tensor3 gather_backward_qkv(const at::Tensor& grad_q, const at::Tensor& grad_k,
                            const at::Tensor& grad_v, const at::Tensor& inverse, int64_t levels,
                            int64_t pool, int64_t kv_heads) {
  static auto op = op_handle<Tensor3(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const at::Tensor&, int64_t, int64_t, int64_t)>(
      "lighthouse::_gather_backward_qkv");
  return op.call(grad_q, grad_k, grad_v, inverse, levels, pool, kv_heads);
}

at::Tensor scatter(const at::Tensor& o_tilde, const at::Tensor& slots, const at::Tensor& inverse,
                   int64_t levels, int64_t pool) {
  static auto op = op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     int64_t, int64_t)>("lighthouse::_scatter");
  return op.call(o_tilde, slots, inverse, levels, pool);
}

at::Tensor scatter_backward(const at::Tensor& grad, const at::Tensor& slots, int64_t levels,
                            int64_t pool) {
  static auto op = op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, int64_t)>(
      "lighthouse::_scatter_backward");
  return op.call(grad, slots, levels, pool);
}

// CPU, and `auto` on CUDA: at::scaled_dot_product_attention picks its kernel. A named CUDA
// backend calls that stock kernel directly (each has its autograd formula); K/V heads are
// repeated for GQA first, as those kernels expect equal head counts.
at::Tensor sdpa_causal(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       SdpaBackend backend) {
  const bool gqa = k.sym_size(1) != q.sym_size(1);  // guarded under symbolic tracing
  if (!q.is_cuda() || backend == SdpaBackend::Auto)
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                            /*is_causal=*/true, /*scale=*/std::nullopt, gqa);
  const int64_t group = q.size(1) / k.size(1);
  const at::Tensor kk = gqa ? k.repeat_interleave(group, 1) : k;  // [B, H, S, D]
  const at::Tensor vv = gqa ? v.repeat_interleave(group, 1) : v;  // [B, H, S, D]
  const bool grad = at::GradMode::is_enabled() &&
                    (q.requires_grad() || k.requires_grad() || v.requires_grad());
  switch (backend) {
    case SdpaBackend::Cudnn:
      return std::get<0>(at::_scaled_dot_product_cudnn_attention(
          q, kk, vv, /*attn_bias=*/{}, /*compute_log_sumexp=*/grad, 0.0, /*is_causal=*/true));
    case SdpaBackend::Flash:
      return std::get<0>(at::_scaled_dot_product_flash_attention(q, kk, vv, 0.0, true));
    case SdpaBackend::Efficient:
      return std::get<0>(at::_scaled_dot_product_efficient_attention(
          q, kk, vv, /*attn_bias=*/{}, /*compute_log_sumexp=*/grad, 0.0, /*is_causal=*/true));
    case SdpaBackend::Math:
    case SdpaBackend::Auto:
      break;
  }
  return std::get<0>(at::_scaled_dot_product_attention_math(q, kk, vv, {}, 0.0, true));
}

}  // namespace lighthouse::stages

namespace lighthouse::ops {

at::Tensor check_plan_values(const at::Tensor& slots, const at::Tensor& inverse) {
  static auto op = op_handle<at::Tensor(const at::Tensor&, const at::Tensor&)>(
      "lighthouse::_check_plan");
  return op.call(slots, inverse);
}

}  // namespace lighthouse::ops
