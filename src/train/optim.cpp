// AdamW parameter groups, the warmup + decay schedule and gradient clipping (optim.h).
#include "train/optim.h"

#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/_fused_adamw.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace lighthouse::train {

namespace {

// The warmup + decay schedule alone.
double scheduled_lr(const RunConfig& cfg, int64_t step) {
  const double peak = cfg.optim.lr;
  const int64_t warm = cfg.schedule.warmup_steps, total = cfg.train.steps;
  if (step < warm) return peak * static_cast<double>(step + 1) / static_cast<double>(warm);
  const double f = cfg.schedule.min_lr_factor;
  const double progress =
      std::min(1.0, static_cast<double>(step - warm) /
                        static_cast<double>(std::max<int64_t>(1, total - warm)));
  if (cfg.schedule.decay == "linear") return peak * (1.0 - (1.0 - f) * progress);
  if (cfg.schedule.decay == "cosine")
    return peak * (f + (1.0 - f) * 0.5 * (1.0 + std::cos(M_PI * progress)));
  return peak;
}

}  // namespace

double lr_at(const RunConfig& cfg, int64_t step) {
  const double lr = scheduled_lr(cfg, step);
  const int64_t sw = cfg.train.stage1_steps, n = cfg.schedule.rewarmup_steps;
  const bool two_stage = cfg.train.attention == model::AttentionMode::Lighthouse && sw > 0 &&
                         sw < cfg.train.steps;
  if (!two_stage || n <= 0 || step < sw || step >= sw + n) return lr;
  return lr * static_cast<double>(step - sw + 1) / static_cast<double>(n);
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(const torch::nn::Module& model,
                                                    const RunConfig& cfg,
                                                    const std::vector<int>& owners, int rank) {
  std::vector<at::Tensor> decay, no_decay;
  const auto named = model.named_parameters();
  TORCH_CHECK(owners.empty() || owners.size() == named.size(), "owners must name ", named.size(),
              " parameters, got ", owners.size());
  for (size_t i = 0; i < named.size(); ++i) {
    const auto& p = named[i];
    if (!owners.empty() && owners[i] != rank) continue;
    const bool exempt = p.value().dim() < 2 || p.key().find("embed") != std::string::npos;
    (exempt && !cfg.optim.decay_norms_and_embeddings ? no_decay : decay).push_back(p.value());
  }
  auto opts = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(cfg.optim.lr)
            .betas({cfg.optim.beta1, cfg.optim.beta2})
            .eps(cfg.optim.eps)
            .weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, opts(cfg.optim.weight_decay));
  if (!no_decay.empty()) groups.emplace_back(no_decay, opts(0.0));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(cfg.optim.lr));
}

void set_hyperparameters(torch::optim::AdamW& opt, const RunConfig& cfg, double lr) {
  for (size_t g = 0; g < opt.param_groups().size(); ++g) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[g].options());
    o.lr(lr).betas({cfg.optim.beta1, cfg.optim.beta2}).eps(cfg.optim.eps);
    o.weight_decay(g == 0 ? cfg.optim.weight_decay : 0.0);
  }
}

void adamw_step(torch::optim::AdamW& opt, bool fused) {
  if (!fused) {
    opt.step();
    return;
  }
  torch::NoGradGuard no_grad;
  auto& state = opt.state();
  for (auto& group : opt.param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    TORCH_CHECK(!o.amsgrad(), "optim.fused: amsgrad is not supported");
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs;
    std::vector<double> steps;
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      TORCH_CHECK(p.scalar_type() == at::kFloat && p.device() == group.params()[0].device(),
                  "optim.fused: parameters must be fp32 on one device, got ", p.scalar_type(),
                  " on ", p.device());
      void* key = p.unsafeGetTensorImpl();  // opt.step()'s key for the parameter's state
      auto it = state.find(key);
      if (it == state.end()) {  // lazily, as opt.step() creates it
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(0);
        st->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        st->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        it = state.emplace(key, std::move(st)).first;
      }
      auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
      st.step(st.step() + 1);
      params.push_back(p);
      grads.push_back(p.grad());
      exp_avgs.push_back(st.exp_avg());
      exp_avg_sqs.push_back(st.exp_avg_sq());
      steps.push_back(static_cast<double>(st.step()));
    }
    if (params.empty()) continue;
    // The kernel reads each parameter's step from a device scalar: one copy for the group.
    const at::Tensor step_t =
        torch::tensor(steps, torch::dtype(at::kDouble)).to(params[0].device(), at::kFloat);
    std::vector<at::Tensor> state_steps;
    for (size_t i = 0; i < params.size(); ++i) state_steps.push_back(step_t[i]);
    const auto [beta1, beta2] = o.betas();
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, {}, state_steps, o.lr(), beta1, beta2,
                      o.weight_decay(), o.eps(), /*amsgrad=*/false, /*maximize=*/false);
  }
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  std::vector<at::Tensor> grads;  // the live gradients, scaled in place below
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  torch::NoGradGuard ng;
  const std::vector<at::Tensor> norms = at::_foreach_norm(grads, 2, at::kFloat);  // 0-d each
  const double total = torch::stack(norms).norm().item<double>();
  if (max_norm > 0 && total > max_norm) at::_foreach_mul_(grads, max_norm / (total + 1e-6));
  return total;
}

}  // namespace lighthouse::train
