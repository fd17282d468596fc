// CUDA launches of the model's fused elementwise kernels (src/cuda/fused.h), for the autograd
// functions of src/model/fused.h. Declared everywhere, defined in CUDA builds only
// (fused_cuda.cpp, LIGHTHOUSE_WITH_CUDA): callers reach them under
// `if constexpr (fused_cuda_built())`. Each launch takes CUDA tensors, checks them by name,
// allocates its outputs and runs on the current stream.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace lighthouse::ops {

// Whether this build holds the fused CUDA kernels.
constexpr bool fused_cuda_built() {
#ifdef LIGHTHOUSE_WITH_CUDA
  return true;
#else
  return false;
#endif
}

// y = silu(g) * u; g, u of one float dtype and shape.
at::Tensor swiglu_cuda(const at::Tensor& g, const at::Tensor& u);
// (dg, du) of y = silu(g) * u for the gradient dy of y.
std::tuple<at::Tensor, at::Tensor> swiglu_backward_cuda(const at::Tensor& dy, const at::Tensor& g,
                                                        const at::Tensor& u);

// x [B, N, H, D] (any strides with the last 1), cos, sin [N, 1, D] of x's dtype -> [B, N, H, D]
// contiguous: x * cos + swap_halves(x) * sin, or with `adjoint` x * cos + swap_halves(x * sin).
at::Tensor rope_cuda(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     bool adjoint);

// Whether add_rms_norm_cuda takes these: CUDA float tensors, r of `out` dtype, x + r of x's,
// the last dim (weight's size) a multiple of 8 and <= 8192.
bool add_rms_norm_cuda_supports(const at::Tensor& x, const at::Tensor& r,
                                const at::Tensor& weight, at::ScalarType out);
// h = x + r (x's dtype), y = rms_norm(h) * weight in fp32, stored as `out`: (h, y).
std::tuple<at::Tensor, at::Tensor> add_rms_norm_cuda(const at::Tensor& x, const at::Tensor& r,
                                                     const at::Tensor& weight, double eps,
                                                     at::ScalarType out);
// The backward from h [..., C], the gradients gy (y's dtype) and gh (h's; undefined: none):
// (dx in h's dtype, dr in r_dtype, dweight in weight's dtype).
std::tuple<at::Tensor, at::Tensor, at::Tensor> add_rms_norm_backward_cuda(
    const at::Tensor& h, const at::Tensor& weight, const at::Tensor& gy, const at::Tensor& gh,
    double eps, at::ScalarType r_dtype);

}  // namespace lighthouse::ops
