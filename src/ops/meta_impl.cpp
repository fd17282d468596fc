// Meta (shape-only) backend of the stage ops (after the shared checks of stage_impls.h), so
// FakeTensor tracing, torch.compile and torch.library.opcheck see the same shapes and dtypes
// as the real kernels.
#include "ops/stage_impls.h"

namespace lighthouse::ops {
namespace {

struct Meta {
  using Guard = NoGuard;

  static std::tuple<at::Tensor, at::Tensor> pool_score(const at::Tensor& x, const Geometry& g,
                                                       bool want_pyramid, bool want_score) {
    const int64_t B = dim_size(x, 0), Hx = dim_size(x, 2), D = dim_size(x, 3);
    at::Tensor pyr = at::empty(
        want_pyramid ? at::IntArrayRef{B, g.P1, Hx, D} : at::IntArrayRef{0}, x.options());
    at::Tensor sc = at::empty(want_score ? at::IntArrayRef{B, Hx, g.P} : at::IntArrayRef{0},
                              x.options().dtype(at::kFloat));
    return {pyr, sc};
  }

  static std::tuple<at::Tensor, at::Tensor> dilated_score(const at::Tensor& q, const at::Tensor&,
                                                          const at::Tensor&, int64_t,
                                                          const Geometry& g) {
    auto opts = q.options().dtype(at::kFloat);
    const int64_t B = dim_size(q, 0), H = dim_size(q, 2);
    return {at::empty({B, H, g.P}, opts), at::empty({B, H, g.P}, opts)};
  }

  static std::tuple<at::Tensor, at::Tensor> select(const at::Tensor& sq, const at::Tensor&,
                                                   Selection, const Geometry& g,
                                                   const at::Tensor&, const at::Tensor&) {
    auto opts = sq.options().dtype(at::kLong);
    return {at::empty({dim_size(sq, 0), dim_size(sq, 1), g.S}, opts),
            at::empty({dim_size(sq, 0), dim_size(sq, 1), g.P}, opts)};
  }

  static at::Tensor gather(const at::Tensor& x, const at::Tensor&, const at::Tensor& slots,
                           const at::Tensor&, const Geometry&) {
    return at::empty({dim_size(x, 0), dim_size(slots, 1), dim_size(slots, 2), dim_size(x, 3)},
                     x.options());
  }

  static at::Tensor gather_backward(const at::Tensor& grad, const at::Tensor&, int64_t kv_heads,
                                    const Geometry& g) {
    return at::empty({dim_size(grad, 0), g.N, kv_heads, dim_size(grad, 3)}, grad.options());
  }

  static at::Tensor scatter(const at::Tensor& o_tilde, const at::Tensor&, const at::Tensor&,
                            const Geometry& g) {
    return at::empty({dim_size(o_tilde, 0), g.N, dim_size(o_tilde, 1), dim_size(o_tilde, 3)},
                     o_tilde.options());
  }

  static at::Tensor scatter_backward(const at::Tensor& grad, const at::Tensor& slots,
                                     const Geometry&) {
    return at::empty(
        {dim_size(grad, 0), dim_size(grad, 2), dim_size(slots, 2), dim_size(grad, 3)},
        grad.options());
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(lighthouse, Meta, m) { register_stages<Meta>(m); }

}  // namespace lighthouse::ops
