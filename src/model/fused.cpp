// Autograd functions of the fused layers (fused.h): the CUDA kernels where they apply, the at::
// composition (forward) and its closed-form backward otherwise. The kernel branches sit under
// `if constexpr (ops::fused_cuda_built())`, so a build without CUDA needs no kernel symbols.
#include "model/fused.h"

#include <torch/torch.h>

#include "ops/fused.h"

namespace lighthouse::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The opmath dtype of the references' backward: float64 stays, every other dtype runs in fp32.
at::ScalarType acc_type(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

bool on_cuda(std::initializer_list<at::Tensor> ts) {
  if (!ops::fused_cuda_built()) return false;
  for (const at::Tensor& t : ts)
    if (!t.is_cuda()) return false;
  return true;
}

bool swiglu_kernel_takes(const at::Tensor& g, const at::Tensor& u) {
  const at::ScalarType st = g.scalar_type();
  return on_cuda({g, u}) && st == u.scalar_type() && g.sizes() == u.sizes() &&
         (st == at::kFloat || st == at::kHalf || st == at::kBFloat16);
}

struct SwigluFn : torch::autograd::Function<SwigluFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& g, const at::Tensor& u) {
    ctx->save_for_backward({g, u});
    if constexpr (ops::fused_cuda_built())
      if (swiglu_kernel_takes(g, u)) return ops::swiglu_cuda(g, u);
    return at::silu(g) * u;  // [...]
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &g = saved[0], &u = saved[1], &dy = grad[0];  // [...]
    if constexpr (ops::fused_cuda_built()) {
      if (swiglu_kernel_takes(g, u) && dy.scalar_type() == g.scalar_type()) {
        auto [dg, du] = ops::swiglu_backward_cuda(dy, g, u);
        return {dg, du};
      }
    }
    const at::ScalarType acc = acc_type(g);
    const at::Tensor gf = g.to(acc), uf = u.to(acc), dyf = dy.to(acc);  // [...]
    const at::Tensor s = at::sigmoid(gf);                                // [...]
    const at::Tensor dg = dyf * uf * s * (1 + gf * (1 - s));             // [...]
    const at::Tensor du = dyf * gf * s;                                  // [...]
    return {dg.to(g.scalar_type()), du.to(u.scalar_type())};
  }
};

// [x2, x1]: the halves of the last dimension swapped.
at::Tensor swap_halves(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// y = x * cos + swap_halves(x) * sin (sin signed, so the second term is rotate_half(x) * sin).
// The rotation's adjoint is dx = g * cos + swap_halves(g * sin): the backward keeps only the
// tables, where autograd's would materialize and sum the gradients of the two half-slices.
struct RopeFn : torch::autograd::Function<RopeFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin, bool kernel) {
    ctx->save_for_backward({cos, sin});
    const bool k = kernel && on_cuda({x, cos, sin});
    ctx->saved_data["kernel"] = k;
    if constexpr (ops::fused_cuda_built())
      if (k) return ops::rope_cuda(x, cos, sin, /*adjoint=*/false);  // [B, N, H, D]
    return at::addcmul(x * cos, swap_halves(x), sin);               // [B, N, H, D]
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto tables = ctx->get_saved_variables();  // cos, sin: [N, 1, D]
    const at::Tensor& g = grad[0];                    // [B, N, H, D]
    if constexpr (ops::fused_cuda_built()) {
      if (ctx->saved_data["kernel"].toBool() && g.scalar_type() == tables[0].scalar_type())
        return {ops::rope_cuda(g, tables[0], tables[1], /*adjoint=*/true), at::Tensor(),
                at::Tensor(), at::Tensor()};
    }
    at::Tensor dx = at::addcmul(swap_halves(g * tables[1]), g, tables[0]);  // [B, N, H, D]
    return {dx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// Saved: h and weight; saved_data: eps, the dtypes of x and r, whether the kernel ran.
struct AddRmsNormFn : torch::autograd::Function<AddRmsNormFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& r,
                               const at::Tensor& weight, double eps, int64_t out) {
    const auto out_dtype = static_cast<at::ScalarType>(out);
    bool k = false;
    at::Tensor h, y;  // [..., C]
    if constexpr (ops::fused_cuda_built()) {
      k = on_cuda({x, r, weight}) && ops::add_rms_norm_cuda_supports(x, r, weight, out_dtype);
      if (k) std::tie(h, y) = ops::add_rms_norm_cuda(x, r, weight, eps, out_dtype);
    }
    if (!k) {
      h = x + r;
      y = at::rms_norm(h, {weight.size(0)}, weight, eps).to(out_dtype);
    }
    ctx->save_for_backward({h, weight});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["r_dtype"] = static_cast<int64_t>(r.scalar_type());
    ctx->saved_data["kernel"] = k;
    return {h, y};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &h = saved[0], &weight = saved[1];  // [..., C], [C]
    const at::Tensor &gh = grad[0], &gy = grad[1];       // [..., C] each, either undefined
    const double eps = ctx->saved_data["eps"].toDouble();
    const auto x_dtype = static_cast<at::ScalarType>(ctx->saved_data["x_dtype"].toInt());
    const auto r_dtype = static_cast<at::ScalarType>(ctx->saved_data["r_dtype"].toInt());
    if (!gy.defined()) {  // only h was used
      const at::Tensor dh = gh.defined() ? gh : at::zeros_like(h);
      return {dh.to(x_dtype), dh.to(r_dtype), at::Tensor(), at::Tensor(), at::Tensor()};
    }
    if constexpr (ops::fused_cuda_built()) {
      if (ctx->saved_data["kernel"].toBool() && gy.scalar_type() == r_dtype &&
          (!gh.defined() || gh.scalar_type() == h.scalar_type())) {
        auto [dx, dr, dw] = ops::add_rms_norm_backward_cuda(h, weight, gy, gh, eps, r_dtype);
        return {dx, dr, dw, at::Tensor(), at::Tensor()};
      }
    }
    const at::ScalarType acc = acc_type(h);
    const int64_t C = h.size(-1);
    const at::Tensor hf = h.to(acc), gyf = gy.to(acc), wf = weight.to(acc);  // [..., C], [C]
    const at::Tensor rstd = (hf.pow(2).mean(-1, true) + eps).rsqrt();        // [..., 1]
    const at::Tensor dyhat = gyf * wf;                                        // [..., C]
    at::Tensor dh = rstd * dyhat - hf * rstd.pow(3) * (dyhat * hf).mean(-1, true);  // [..., C]
    if (gh.defined()) dh = dh + gh.to(acc);
    const at::Tensor dw = (gyf * hf * rstd).reshape({-1, C}).sum(0);         // [C]
    return {dh.to(x_dtype), dh.to(r_dtype), dw.to(weight.scalar_type()), at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

at::Tensor swiglu(const at::Tensor& g, const at::Tensor& u) { return SwigluFn::apply(g, u); }

at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool kernel) {
  return RopeFn::apply(x, cos, sin, kernel);
}

AddRmsNorm add_rms_norm(const at::Tensor& x, const at::Tensor& r, const at::Tensor& weight,
                        double eps, at::ScalarType out) {
  TORCH_CHECK_VALUE(x.dim() >= 1 && weight.dim() == 1 && x.size(-1) == weight.size(0),
                    "add_rms_norm: weight must be [C] with C = x's last dim, got x ", x.sizes(),
                    ", weight ", weight.sizes());
  TORCH_CHECK_VALUE(r.sizes() == x.sizes(), "add_rms_norm: r must have x's sizes ", x.sizes(),
                    ", got ", r.sizes());
  const variable_list hy = AddRmsNormFn::apply(x, r, weight, eps, static_cast<int64_t>(out));
  return {hy[0], hy[1]};
}

}  // namespace lighthouse::model
