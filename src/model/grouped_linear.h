// Projections of one input by several weights (q/k/v of attention, gate/up of the MLP) as one
// autograd node. Forward: y_i = linear(x, W_i), as separate linears compute them. Backward:
// dx = sum_i dy_i W_i with every term after the first accumulated inside its matrix product
// (beta = 1), dW_i = dy_i^T x. Separate linears leave the sum of their input gradients to
// autograd, one elementwise add of x's size per extra weight (model.grouped_projections).
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace lighthouse::model {

// x [..., in], weights [out_i, in] of x's dtype -> {y_i [..., out_i]}. Outputs without a
// gradient in backward contribute nothing.
std::vector<at::Tensor> grouped_linear(const at::Tensor& x, at::TensorList weights);

// The weight as a projection of x computes with it: autocast's cast (cached as autocast caches
// weights) when autocast is on for x's device type, the weight itself otherwise.
at::Tensor compute_weight(const at::Tensor& weight, const at::Tensor& x);

}  // namespace lighthouse::model
