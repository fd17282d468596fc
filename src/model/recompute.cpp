// Recomputed call as a torch::autograd::Function: forward keeps x, backward recomputes
// fn(x) with grad and returns the gradients of x and of the parameters fn reads.
#include "model/recompute.h"

#include <ATen/autocast_mode.h>

#include "model/autocast.h"

namespace lighthouse::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs to rerun the function: the closure and the forward's autocast state.
struct Recompute : torch::CustomClassHolder {
  std::function<at::Tensor(const at::Tensor&)> fn;
  at::DeviceType device_type = at::kCPU;
  bool autocast = false;
  at::ScalarType autocast_dtype = at::kBFloat16;
};

struct RecomputeFn : torch::autograd::Function<RecomputeFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, at::TensorList params,
                            const c10::intrusive_ptr<Recompute>& rec) {
    std::vector<at::Tensor> saved{x};
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(rec);
    return rec->fn(x);  // grad mode is off inside Function::forward: no graph is kept
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto rec = c10::static_intrusive_pointer_cast<Recompute>(
        ctx->saved_data["recompute"].toCapsule());
    variable_list saved = ctx->get_saved_variables();  // x, then the parameters
    at::Tensor x = saved[0].detach().requires_grad_(true);  // [B, N, d_model]
    variable_list inputs{x};
    std::vector<size_t> wanted;  // positions in saved of the parameters needing gradients
    for (size_t i = 1; i < saved.size(); ++i) {
      if (saved[i].requires_grad()) {
        wanted.push_back(i);
        inputs.push_back(saved[i]);
      }
    }
    at::Tensor y;  // [B, N, d_model]
    {
      torch::AutoGradMode grad(true);
      AutocastScope autocast(rec->device_type, rec->autocast, rec->autocast_dtype,
                             /*weight_cache=*/false);
      y = rec->fn(x);
    }
    variable_list g = torch::autograd::grad({y}, inputs, {grad_out[0]}, /*retain_graph=*/false,
                                            /*create_graph=*/false, /*allow_unused=*/true);
    variable_list out(saved.size() + 1);  // x, every parameter, then the closure (none)
    out[0] = g[0];
    for (size_t j = 0; j < wanted.size(); ++j) out[wanted[j]] = g[j + 1];
    return out;
  }
};

}  // namespace

at::Tensor recomputed(const std::function<at::Tensor(const at::Tensor&)>& fn,
                        const at::Tensor& x, const std::vector<at::Tensor>& params) {
  auto rec = c10::make_intrusive<Recompute>();
  rec->fn = fn;
  rec->device_type = x.device().type();
  rec->autocast = at::autocast::is_autocast_enabled(rec->device_type);
  rec->autocast_dtype = at::autocast::get_autocast_dtype(rec->device_type);
  return RecomputeFn::apply(x, at::TensorList(params), rec);
}

}  // namespace lighthouse::model
