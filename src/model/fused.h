// The model's fused elementwise layers as autograd functions: SwiGLU, RoPE and the residual
// add + RMSNorm. Each runs its CUDA kernel (src/ops/fused.h) on CUDA tensors the kernel takes
// and the at:: composition it replaces (the reference) otherwise, forward and backward.
// model.fused_kernels (ModelConfig::fused_kernels) picks these over the plain composition.
#pragma once

#include <ATen/ATen.h>

namespace lighthouse::model {

// y = silu(g) * u; g, u of one shape. Backward: dg = dy * u * s * (1 + g * (1 - s)),
// du = dy * silu(g), s = sigmoid(g).
at::Tensor swiglu(const at::Tensor& g, const at::Tensor& u);

// x [B, N, H, D] (a strided view allowed), cos, sin [N, 1, D] (RopeTables, layers.h):
// y = x * cos + swap_halves(x) * sin; backward dx = g * cos + swap_halves(g * sin).
// kernel: the CUDA kernel on CUDA tensors; false: the composition everywhere.
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool kernel);

// h = x + r and y = rms_norm(h, weight, eps).to(out) over the last dim; the gradient into h
// from both outputs flows to x and r (x's and r's dtypes), and to weight.
struct AddRmsNorm {
  at::Tensor h;  // [..., C], dtype of x + r
  at::Tensor y;  // [..., C], dtype out
};
AddRmsNorm add_rms_norm(const at::Tensor& x, const at::Tensor& r, const at::Tensor& weight,
                        double eps, at::ScalarType out);

}  // namespace lighthouse::model
