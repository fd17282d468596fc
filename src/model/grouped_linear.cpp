// grouped_linear (grouped_linear.h): one autograd function over at:: matrix products, the same
// on every device.
#include "model/grouped_linear.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

namespace lighthouse::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct GroupedLinearFn : torch::autograd::Function<GroupedLinearFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, at::TensorList ws) {
    variable_list saved{x};
    variable_list ys;
    for (const at::Tensor& w : ws) {
      saved.push_back(w);
      ys.push_back(at::linear(x, w));  // [..., out_i]
    }
    ctx->save_for_backward(saved);
    ctx->set_materialize_grads(false);  // an unused output's gradient stays undefined: no work
    return ys;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const int64_t in = x.size(-1);
    const at::Tensor x2 = x.reshape({-1, in});  // [M, in]
    at::Tensor dx2;                             // [M, in]
    variable_list out{at::Tensor()};
    for (size_t i = 0; i < grad.size(); ++i) {
      const at::Tensor& w = saved[i + 1];  // [out_i, in]
      if (!grad[i].defined()) {
        out.emplace_back();
        continue;
      }
      const at::Tensor dy2 = grad[i].reshape({-1, w.size(0)});  // [M, out_i]
      if (ctx->needs_input_grad(0)) {
        if (dx2.defined()) {
          dx2.addmm_(dy2, w);  // the sum inside the product: C read once, no separate add
        } else {
          dx2 = at::mm(dy2, w);
        }
      }
      out.push_back(ctx->needs_input_grad(i + 1) ? at::mm(dy2.t(), x2) : at::Tensor());
    }
    if (dx2.defined()) out[0] = dx2.view(x.sizes());
    return out;
  }
};

}  // namespace

std::vector<at::Tensor> grouped_linear(const at::Tensor& x, at::TensorList weights) {
  TORCH_CHECK_VALUE(!weights.empty(), "grouped_linear: weights must hold at least one weight");
  TORCH_CHECK_VALUE(x.dim() >= 1, "grouped_linear: x must be [..., in], got ", x.sizes());
  for (size_t i = 0; i < weights.size(); ++i) {
    const at::Tensor& w = weights[i];
    TORCH_CHECK_VALUE(w.dim() == 2 && w.size(1) == x.size(-1), "grouped_linear: weights[", i,
                      "] must be [out, ", x.size(-1), "] (x's last dim), got ", w.sizes());
    TORCH_CHECK_TYPE(w.scalar_type() == x.scalar_type(), "grouped_linear: weights[", i,
                     "] must be x's ", x.scalar_type(), ", got ", w.scalar_type());
  }
  return GroupedLinearFn::apply(x, weights);
}

at::Tensor compute_weight(const at::Tensor& weight, const at::Tensor& x) {
  const at::DeviceType dev = x.device().type();
  if (!at::autocast::is_autocast_enabled(dev)) return weight;
  return at::autocast::cached_cast(at::autocast::get_autocast_dtype(dev), weight, dev);
}

}  // namespace lighthouse::model
