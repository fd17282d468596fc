// Meta (shape-only) implementations of the stage ops, so FakeTensor tracing, torch.compile
// and torch.library.opcheck see the same shapes and dtypes as the real kernels.
#include <torch/library.h>

#include "ops/stages.h"

namespace lighthouse::ops {
namespace {

std::tuple<at::Tensor, at::Tensor> pool_score_meta(const at::Tensor& x, int64_t levels,
                                                   int64_t pool, bool want_pyramid,
                                                   bool want_score) {
  const Geometry g = check_pool_score(x, levels, pool);
  const int64_t B = dim_size(x, 0), Hx = dim_size(x, 2), D = dim_size(x, 3);
  at::Tensor pyr = at::empty(want_pyramid ? at::IntArrayRef{B, g.P1, Hx, D} : at::IntArrayRef{0},
                             x.options());
  at::Tensor sc = at::empty(want_score ? at::IntArrayRef{B, Hx, g.P} : at::IntArrayRef{0},
                            x.options().dtype(at::kFloat));
  return {pyr, sc};
}

std::tuple<at::Tensor, at::Tensor> select_meta(const at::Tensor& sq, const at::Tensor& sk,
                                               int64_t levels, int64_t pool, int64_t topk,
                                               int64_t tile_topk, c10::string_view selection) {
  const Config cfg = config_from_args(levels, pool, topk, tile_topk, "norm", "auto", selection);
  const Geometry g = check_select(sq, sk, cfg);
  auto opts = sq.options().dtype(at::kLong);
  return {at::empty({dim_size(sq, 0), dim_size(sq, 1), g.S}, opts),
          at::empty({dim_size(sq, 0), dim_size(sq, 1), g.P}, opts)};
}

at::Tensor gather_meta(const at::Tensor& x, const at::Tensor& pyramid, const at::Tensor& slots,
                       const at::Tensor& inverse, int64_t levels, int64_t pool) {
  check_gather(x, pyramid, slots, inverse, levels, pool);
  return at::empty({dim_size(x, 0), dim_size(slots, 1), dim_size(slots, 2), dim_size(x, 3)},
                   x.options());
}

at::Tensor gather_backward_meta(const at::Tensor& grad, const at::Tensor& inverse, int64_t levels,
                                int64_t pool, int64_t kv_heads) {
  const Geometry g = check_gather_backward(grad, inverse, levels, pool, kv_heads);
  return at::empty({dim_size(grad, 0), g.N, kv_heads, dim_size(grad, 3)}, grad.options());
}

at::Tensor scatter_meta(const at::Tensor& o_tilde, const at::Tensor& slots,
                        const at::Tensor& inverse, int64_t levels, int64_t pool) {
  const Geometry g = check_scatter(o_tilde, slots, inverse, levels, pool);
  return at::empty({dim_size(o_tilde, 0), g.N, dim_size(o_tilde, 1), dim_size(o_tilde, 3)},
                   o_tilde.options());
}

at::Tensor scatter_backward_meta(const at::Tensor& grad, const at::Tensor& slots, int64_t levels,
                                 int64_t pool) {
  check_scatter_backward(grad, slots, levels, pool);
  return at::empty({dim_size(grad, 0), dim_size(grad, 2), dim_size(slots, 2), dim_size(grad, 3)},
                   grad.options());
}

}  // namespace

TORCH_LIBRARY_IMPL(lighthouse, Meta, m) {
  m.impl("_pool_score", &pool_score_meta);
  m.impl("_select", &select_meta);
  m.impl("_gather", &gather_meta);
  m.impl("_gather_backward", &gather_backward_meta);
  m.impl("_scatter", &scatter_meta);
  m.impl("_scatter_backward", &scatter_backward_meta);
}

}  // namespace lighthouse::ops
