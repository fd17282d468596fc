// CPU implementations of the stage ops: check, upcast bf16/fp16 to float32, call the
// reference kernels (src/cpu), cast back to the input dtype. Plan indices are range-checked
// here so that a bad index is an error, never an out-of-bounds read; a user plan's full
// validation happens once, at the op boundary (plan_check.cpp), on every device.
#include <torch/library.h>

#include "cpu/reference.h"
#include "ops/stages.h"

namespace lighthouse::ops {
namespace {

// float64 stays float64; everything else computes in float32.
at::Tensor compute(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? x.contiguous() : x.to(at::kFloat).contiguous();
}

void check_range(const at::Tensor& t, int64_t lo, int64_t hi, const char* what) {
  const int64_t mn = t.min().item<int64_t>(), mx = t.max().item<int64_t>();
  TORCH_CHECK_VALUE(mn >= lo && mx < hi, what, " values must lie in [", lo, ", ", hi,
                    "), got [", mn, ", ", mx, "]; pass a plan made by lighthouse::plan");
}

std::tuple<at::Tensor, at::Tensor> pool_score_cpu(const at::Tensor& x, int64_t levels,
                                                  int64_t pool, bool want_pyramid,
                                                  bool want_score) {
  const Geometry g = check_pool_score(x, levels, pool);
  const at::Tensor xc = compute(x);
  at::Tensor pyr = want_pyramid ? cpu::pool(xc, g).to(x.scalar_type()) : at::empty({0}, x.options());
  at::Tensor sc = want_score ? cpu::score(xc, g) : at::empty({0}, x.options().dtype(at::kFloat));
  return {pyr, sc};
}

std::tuple<at::Tensor, at::Tensor> dilated_score_cpu(const at::Tensor& q, const at::Tensor& k,
                                                     const at::Tensor& v, int64_t levels,
                                                     int64_t pool, int64_t dilation) {
  const Geometry g = check_dilated_score(q, k, v, levels, pool, dilation);
  return cpu::dilated_score(compute(q), compute(k), compute(v), dilation, g);
}

std::tuple<at::Tensor, at::Tensor> select_cpu(const at::Tensor& sq, const at::Tensor& sk,
                                              int64_t levels, int64_t pool, int64_t topk,
                                              int64_t tile_topk, c10::string_view selection) {
  const Config cfg = config_from_args(levels, pool, topk, tile_topk, "norm", "auto", 4, selection);
  const Geometry g = check_select(sq, sk, cfg);
  return cpu::select(sq.contiguous(), sk.contiguous(), g, cfg.selection);
}

at::Tensor gather_cpu(const at::Tensor& x, const at::Tensor& pyramid, const at::Tensor& slots,
                      const at::Tensor& inverse, int64_t levels, int64_t pool) {
  const Geometry g = check_gather(x, pyramid, slots, inverse, levels, pool);
  check_range(slots, 0, g.P, "slots");
  check_range(inverse, -1, slots.size(2), "inverse");
  return cpu::gather(compute(x), compute(pyramid), slots.contiguous(), g).to(x.scalar_type());
}

at::Tensor gather_backward_cpu(const at::Tensor& grad, const at::Tensor& inverse, int64_t levels,
                               int64_t pool, int64_t kv_heads) {
  const Geometry g = check_gather_backward(grad, inverse, levels, pool, kv_heads);
  check_range(inverse, -1, grad.size(2), "inverse");
  return cpu::gather_backward(compute(grad), inverse.contiguous(), kv_heads, g)
      .to(grad.scalar_type());
}

at::Tensor scatter_cpu(const at::Tensor& o_tilde, const at::Tensor& slots,
                       const at::Tensor& inverse, int64_t levels, int64_t pool) {
  const Geometry g = check_scatter(o_tilde, slots, inverse, levels, pool);
  check_range(inverse, -1, o_tilde.size(2), "inverse");
  return cpu::scatter(compute(o_tilde), inverse.contiguous(), g).to(o_tilde.scalar_type());
}

at::Tensor scatter_backward_cpu(const at::Tensor& grad, const at::Tensor& slots, int64_t levels,
                                int64_t pool) {
  const Geometry g = check_scatter_backward(grad, slots, levels, pool);
  check_range(slots, 0, g.P, "slots");
  return cpu::scatter_backward(compute(grad), slots.contiguous(), g).to(grad.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(lighthouse, CPU, m) {
  m.impl("_pool_score", &pool_score_cpu);
  m.impl("_dilated_score", &dilated_score_cpu);
  m.impl("_select", &select_cpu);
  m.impl("_gather", &gather_cpu);
  m.impl("_gather_backward", &gather_backward_cpu);
  m.impl("_scatter", &scatter_cpu);
  m.impl("_scatter_backward", &scatter_backward_cpu);
}

}  // namespace lighthouse::ops
