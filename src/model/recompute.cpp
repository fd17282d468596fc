// Recomputed call as a torch::autograd::Function: forward keeps the inputs, backward recomputes
// fn(inputs) with grad and returns the gradients of the inputs and of the parameters fn reads.
#include "model/recompute.h"

#include <ATen/autocast_mode.h>

#include "model/autocast.h"

namespace lighthouse::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs to rerun the function: the closure and the forward's autocast state.
struct Recompute : torch::CustomClassHolder {
  MultiFn fn;
  at::DeviceType device_type = at::kCPU;
  bool autocast = false;
  at::ScalarType autocast_dtype = at::kBFloat16;
};

struct RecomputeFn : torch::autograd::Function<RecomputeFn> {
  static variable_list forward(AutogradContext* ctx, at::TensorList xs, at::TensorList params,
                               const c10::intrusive_ptr<Recompute>& rec) {
    std::vector<at::Tensor> saved(xs.begin(), xs.end());
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(rec);
    ctx->saved_data["inputs"] = static_cast<int64_t>(xs.size());
    return rec->fn(xs.vec());  // grad mode is off inside Function::forward: no graph is kept
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto rec = c10::static_intrusive_pointer_cast<Recompute>(
        ctx->saved_data["recompute"].toCapsule());
    const auto n_in = static_cast<size_t>(ctx->saved_data["inputs"].toInt());
    variable_list saved = ctx->get_saved_variables();  // the inputs, then the parameters
    variable_list xs;
    for (size_t i = 0; i < n_in; ++i) xs.push_back(saved[i].detach().requires_grad_(true));
    variable_list inputs = xs;
    std::vector<size_t> wanted;  // positions in saved of the parameters needing gradients
    for (size_t i = n_in; i < saved.size(); ++i) {
      if (saved[i].requires_grad()) {
        wanted.push_back(i);
        inputs.push_back(saved[i]);
      }
    }
    variable_list ys;  // the outputs recomputed
    {
      torch::AutoGradMode grad(true);
      AutocastScope autocast(rec->device_type, rec->autocast, rec->autocast_dtype,
                             /*weight_cache=*/false);
      ys = rec->fn(xs);
    }
    variable_list outs, grads;  // the outputs that received a gradient
    for (size_t i = 0; i < ys.size(); ++i) {
      if (grad_out[i].defined() && ys[i].requires_grad()) {
        outs.push_back(ys[i]);
        grads.push_back(grad_out[i]);
      }
    }
    variable_list out(saved.size() + 1);  // the inputs, every parameter, then the closure (none)
    if (outs.empty()) return out;
    variable_list g = torch::autograd::grad(outs, inputs, grads, /*retain_graph=*/false,
                                            /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t i = 0; i < n_in; ++i) out[i] = g[i];
    for (size_t j = 0; j < wanted.size(); ++j) out[wanted[j]] = g[n_in + j];
    return out;
  }
};

}  // namespace

std::vector<at::Tensor> recomputed(const MultiFn& fn, const std::vector<at::Tensor>& xs,
                                   const std::vector<at::Tensor>& params) {
  TORCH_CHECK_VALUE(!xs.empty(), "recomputed: xs must hold at least one tensor");
  auto rec = c10::make_intrusive<Recompute>();
  rec->fn = fn;
  rec->device_type = xs[0].device().type();
  rec->autocast = at::autocast::is_autocast_enabled(rec->device_type);
  rec->autocast_dtype = at::autocast::get_autocast_dtype(rec->device_type);
  return RecomputeFn::apply(at::TensorList(xs), at::TensorList(params), rec);
}

at::Tensor recomputed(const std::function<at::Tensor(const at::Tensor&)>& fn,
                        const at::Tensor& x, const std::vector<at::Tensor>& params) {
  const MultiFn multi = [fn](const std::vector<at::Tensor>& in) {
    return std::vector<at::Tensor>{fn(in[0])};
  };
  return recomputed(multi, {x}, params)[0];
}

}  // namespace lighthouse::model
