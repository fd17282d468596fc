// CPU backend of the stage ops (after the shared checks of stage_impls.h): upcast bf16/fp16
// to float32, call the reference kernels (src/cpu), cast back to the input dtype. The plan
// indices a kernel dereferences are range-checked first so that a bad index is an error,
// never an out-of-bounds read of the reference loops; a user plan's full validation happens
// once, at the op boundary (plan_check.cpp), on every device.
#include "cpu/reference.h"
#include "ops/stage_impls.h"

namespace lighthouse::ops {
namespace {

// float64 stays float64; everything else computes in float32.
at::Tensor compute(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? x.contiguous() : x.to(at::kFloat).contiguous();
}

struct Cpu {
  using Guard = NoGuard;

  static std::tuple<at::Tensor, at::Tensor> pool_score(const at::Tensor& x, const Geometry& g,
                                                       bool want_pyramid, bool want_score) {
    const at::Tensor xc = compute(x);  // [B, N, Hx, D]
    at::Tensor pyr =
        want_pyramid ? cpu::pool(xc, g).to(x.scalar_type()) : at::empty({0}, x.options());
    at::Tensor sc =
        want_score ? cpu::score(xc, g) : at::empty({0}, x.options().dtype(at::kFloat));
    return {pyr, sc};
  }

  static std::tuple<at::Tensor, at::Tensor> dilated_score(const at::Tensor& q, const at::Tensor& k,
                                                          const at::Tensor& v, int64_t dilation,
                                                          const Geometry& g) {
    return cpu::dilated_score(compute(q), compute(k), compute(v), dilation, g);
  }

  static std::tuple<at::Tensor, at::Tensor> select(const at::Tensor& sq, const at::Tensor& sk,
                                                   Selection selection, const Geometry& g,
                                                   const at::Tensor& prev_sq,
                                                   const at::Tensor& prev_sk) {
    const auto contiguous = [](const at::Tensor& t) { return t.defined() ? t.contiguous() : t; };
    return cpu::select(sq.contiguous(), sk.contiguous(), g, selection, contiguous(prev_sq),
                       contiguous(prev_sk));
  }

  static at::Tensor gather(const at::Tensor& x, const at::Tensor& pyramid, const at::Tensor& slots,
                           const at::Tensor& inverse, const Geometry& g) {
    check_index_range(slots, 0, g.P, "slots");
    check_index_range(inverse, -1, slots.size(2), "inverse");
    return cpu::gather(compute(x), compute(pyramid), slots.contiguous(), g).to(x.scalar_type());
  }

  static at::Tensor gather_backward(const at::Tensor& grad, const at::Tensor& inverse,
                                    int64_t kv_heads, const Geometry& g) {
    check_index_range(inverse, -1, grad.size(2), "inverse");
    return cpu::gather_backward(compute(grad), inverse.contiguous(), kv_heads, g)
        .to(grad.scalar_type());
  }

  static at::Tensor scatter(const at::Tensor& o_tilde, const at::Tensor& /*slots*/,
                            const at::Tensor& inverse, const Geometry& g) {
    check_index_range(inverse, -1, o_tilde.size(2), "inverse");
    return cpu::scatter(compute(o_tilde), inverse.contiguous(), g).to(o_tilde.scalar_type());
  }

  static at::Tensor scatter_backward(const at::Tensor& grad, const at::Tensor& slots,
                                     const Geometry& g) {
    check_index_range(slots, 0, g.P, "slots");
    return cpu::scatter_backward(compute(grad), slots.contiguous(), g).to(grad.scalar_type());
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(lighthouse, CPU, m) { register_stages<Cpu>(m); }

}  // namespace lighthouse::ops
