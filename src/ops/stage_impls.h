// The one path of every stage op from the dispatcher to a backend (CPU, CUDA, Meta): the
// shared argument checks (stage_checks.cpp) run first, identical on every device, then the
// backend's device guard, then the backend's kernel with the checked geometry. A backend is
// a struct of static functions (the signatures below) and a Guard type constructed from the
// inputs' device; register_stages<Backend> registers its seven stage ops.
#pragma once

#include <torch/library.h>

#include "ops/stages.h"

namespace lighthouse::ops {

// The Guard of a backend that needs no device switch (CPU, Meta).
struct NoGuard {
  explicit NoGuard(const at::Device&) {}
};

template <class Backend>
struct Stages {
  using Guard = typename Backend::Guard;

  static std::tuple<at::Tensor, at::Tensor> pool_score(const at::Tensor& x, int64_t levels,
                                                       int64_t pool, bool want_pyramid,
                                                       bool want_score) {
    const Geometry g = check_pool_score(x, levels, pool);
    const Guard guard(x.device());
    return Backend::pool_score(x, g, want_pyramid, want_score);
  }

  static std::tuple<at::Tensor, at::Tensor> dilated_score(const at::Tensor& q, const at::Tensor& k,
                                                          const at::Tensor& v, int64_t levels,
                                                          int64_t pool, int64_t dilation) {
    const Geometry g = check_dilated_score(q, k, v, levels, pool, dilation);
    const Guard guard(q.device());
    return Backend::dilated_score(q, k, v, dilation, g);
  }

  static std::tuple<at::Tensor, at::Tensor> select(const at::Tensor& sq, const at::Tensor& sk,
                                                   int64_t levels, int64_t pool, int64_t topk,
                                                   int64_t tile_topk, c10::string_view selection,
                                                   const std::optional<at::Tensor>& prev_sq,
                                                   const std::optional<at::Tensor>& prev_sk) {
    const Config cfg =
        config_from_args(levels, pool, topk, tile_topk, "norm", "auto", 4, selection);
    const at::Tensor pq = prev_sq.value_or(at::Tensor()), pk = prev_sk.value_or(at::Tensor());
    const Geometry g = check_select(sq, sk, cfg, pq, pk);
    const Guard guard(sq.device());
    return Backend::select(sq, sk, cfg.selection, g, pq, pk);
  }

  static at::Tensor gather(const at::Tensor& x, const at::Tensor& pyramid, const at::Tensor& slots,
                           const at::Tensor& inverse, int64_t levels, int64_t pool) {
    const Geometry g = check_gather(x, pyramid, slots, inverse, levels, pool);
    const Guard guard(x.device());
    return Backend::gather(x, pyramid, slots, inverse, g);
  }

  static at::Tensor gather_backward(const at::Tensor& grad, const at::Tensor& inverse,
                                    int64_t levels, int64_t pool, int64_t kv_heads) {
    const Geometry g = check_gather_backward(grad, inverse, levels, pool, kv_heads);
    const Guard guard(grad.device());
    return Backend::gather_backward(grad, inverse, kv_heads, g);
  }

  static at::Tensor scatter(const at::Tensor& o_tilde, const at::Tensor& slots,
                            const at::Tensor& inverse, int64_t levels, int64_t pool) {
    const Geometry g = check_scatter(o_tilde, slots, inverse, levels, pool);
    const Guard guard(o_tilde.device());
    return Backend::scatter(o_tilde, slots, inverse, g);
  }

  static at::Tensor scatter_backward(const at::Tensor& grad, const at::Tensor& slots,
                                     int64_t levels, int64_t pool) {
    const Geometry g = check_scatter_backward(grad, slots, levels, pool);
    const Guard guard(grad.device());
    return Backend::scatter_backward(grad, slots, g);
  }
};

template <class Backend>
void register_stages(torch::Library& m) {
  m.impl("_pool_score", &Stages<Backend>::pool_score);
  m.impl("_dilated_score", &Stages<Backend>::dilated_score);
  m.impl("_select", &Stages<Backend>::select);
  m.impl("_gather", &Stages<Backend>::gather);
  m.impl("_gather_backward", &Stages<Backend>::gather_backward);
  m.impl("_scatter", &Stages<Backend>::scatter);
  m.impl("_scatter_backward", &Stages<Backend>::scatter_backward);
}

}  // namespace lighthouse::ops
