// The fused AdamW path (adamw_step(opt, true)) against torch's per-tensor loop (opt.step()) on
// the same random parameters and gradients, two groups (decay / no decay), three steps, the
// last one after switching the fused copy to the loop (the state carries over). Shared by the
// CPU test (ATen's CPU kernel) and the GPU test (its CUDA kernel).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "train/optim.h"

namespace lighthouse::train::testing {

struct AdamwParity {
  double params = 0, exp_avg = 0, exp_avg_sq = 0;  // largest relative difference
  int64_t steps_fused = 0, steps_loop = 0;         // the state's step counts after the run
};

inline AdamwParity adamw_fused_vs_loop(const torch::Device& device) {
  torch::manual_seed(7);
  const auto f32 = torch::dtype(at::kFloat).device(device);
  const std::vector<std::vector<int64_t>> shapes = {{64, 48}, {300}, {7, 5, 3}, {1}};
  std::vector<at::Tensor> a, b;  // identical parameters; a: loop, b: fused
  for (const auto& s : shapes) {
    const at::Tensor init = torch::randn(s, f32);
    a.push_back(init.clone().requires_grad_());
    b.push_back(init.clone().requires_grad_());
  }
  auto make = [](const std::vector<at::Tensor>& p) {
    auto o = [](double wd) {
      return std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(2e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(wd));
    };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::vector<at::Tensor>{p[0], p[2]}, o(0.1));
    groups.emplace_back(std::vector<at::Tensor>{p[1], p[3]}, o(0.0));
    return torch::optim::AdamW(groups, torch::optim::AdamWOptions(2e-2));
  };
  torch::optim::AdamW loop = make(a), fused = make(b);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < a.size(); ++i) {
      const at::Tensor g = torch::randn(a[i].sizes(), f32) * (step + 1);
      a[i].mutable_grad() = g.clone();
      b[i].mutable_grad() = g.clone();
    }
    loop.step();
    adamw_step(fused, /*fused=*/step < 2);
  }
  auto rel = [](const at::Tensor& x, const at::Tensor& y) {
    return ((x - y).abs().max() / y.abs().max().clamp_min(1e-30)).item<double>();
  };
  AdamwParity r;
  for (size_t i = 0; i < a.size(); ++i) {
    r.params = std::max(r.params, rel(b[i].detach(), a[i].detach()));
    const auto& sa = static_cast<const torch::optim::AdamWParamState&>(
        *loop.state().at(a[i].unsafeGetTensorImpl()));
    const auto& sb = static_cast<const torch::optim::AdamWParamState&>(
        *fused.state().at(b[i].unsafeGetTensorImpl()));
    r.exp_avg = std::max(r.exp_avg, rel(sb.exp_avg(), sa.exp_avg()));
    r.exp_avg_sq = std::max(r.exp_avg_sq, rel(sb.exp_avg_sq(), sa.exp_avg_sq()));
    r.steps_fused = sb.step();
    r.steps_loop = sa.step();
  }
  return r;
}

}  // namespace lighthouse::train::testing
