// AdamW parameter groups, the warmup + decay schedule and gradient clipping (optim.h).
#include "train/optim.h"

#include <algorithm>
#include <cmath>

namespace lighthouse::train {

double lr_at(const RunConfig& cfg, int64_t step) {
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

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  std::vector<at::Tensor> norms;  // one 0-d fp32 norm per gradient
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().detach().to(at::kFloat).norm());
  if (norms.empty()) return 0.0;
  const double total = torch::stack(norms).norm().item<double>();
  if (max_norm > 0 && total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    torch::NoGradGuard ng;
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  return total;
}

}  // namespace lighthouse::train
