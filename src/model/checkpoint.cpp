// Checkpointed call as a torch::autograd::Function: forward keeps x, backward recomputes
// fn(x) with grad and returns the gradients of x and of the parameters fn reads.
#include "model/checkpoint.h"

#include <ATen/autocast_mode.h>

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

// Sets one device type's autocast state for a scope (the backward may run on another thread,
// or outside the caller's autocast region). The weight-cast cache stays off inside: cached
// casts would outlive the optimizer's in-place updates.
class AutocastScope {
 public:
  AutocastScope(at::DeviceType type, bool enabled, at::ScalarType dtype)
      : type_(type),
        enabled_(at::autocast::is_autocast_enabled(type)),
        dtype_(at::autocast::get_autocast_dtype(type)),
        cache_(at::autocast::is_autocast_cache_enabled()) {
    at::autocast::set_autocast_enabled(type, enabled);
    at::autocast::set_autocast_dtype(type, dtype);
    at::autocast::set_autocast_cache_enabled(false);
  }
  ~AutocastScope() {
    at::autocast::set_autocast_enabled(type_, enabled_);
    at::autocast::set_autocast_dtype(type_, dtype_);
    at::autocast::set_autocast_cache_enabled(cache_);
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  at::DeviceType type_;
  bool enabled_;
  at::ScalarType dtype_;
  bool cache_;
};

struct CheckpointFn : torch::autograd::Function<CheckpointFn> {
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
      AutocastScope autocast(rec->device_type, rec->autocast, rec->autocast_dtype);
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

at::Tensor checkpointed(const std::function<at::Tensor(const at::Tensor&)>& fn,
                        const at::Tensor& x, const std::vector<at::Tensor>& params) {
  auto rec = c10::make_intrusive<Recompute>();
  rec->fn = fn;
  rec->device_type = x.device().type();
  rec->autocast = at::autocast::is_autocast_enabled(rec->device_type);
  rec->autocast_dtype = at::autocast::get_autocast_dtype(rec->device_type);
  return CheckpointFn::apply(x, at::TensorList(params), rec);
}

}  // namespace lighthouse::model
