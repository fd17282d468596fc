// Process-group setup for the trainer and the ZeRO-1 state gather (distributed.h).
#include "train/distributed.h"

#include <chrono>
#include <string>

namespace lighthouse::train {

std::shared_ptr<dist::Group> join_group(const RunConfig& cfg, const dist::LaunchEnv& env,
                                        torch::Device& device) {
  if (cfg.dist.world_size > 0 && cfg.dist.world_size != env.world)
    throw ConfigError(
        "dist.world_size: " + std::to_string(cfg.dist.world_size) + " processes asked for, but " +
        (env.present ? "the launch (WORLD_SIZE) has " + std::to_string(env.world)
                     : std::string("this process was not started by a launcher (set "
                                   "dist.world_size on the lighthouse train command line, or "
                                   "use torchrun)")));
  if (env.world == 1) return nullptr;
  if (device.is_cuda() && !device.has_index())
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  return std::make_shared<dist::Group>(env, device, std::chrono::seconds(cfg.dist.timeout_s));
}

std::shared_ptr<dist::Group> join_cp_group(const std::shared_ptr<dist::Group>& world, int64_t dp,
                                           int64_t cp) {
  if (!world || cp == 1) return nullptr;
  const int r = world->rank(), C = static_cast<int>(cp), d = r / C, c = r % C;
  world->set_label(world->label() + " (dp " + std::to_string(d) + " of " + std::to_string(dp) +
                   ", cp " + std::to_string(c) + " of " + std::to_string(cp) + ")");
  if (dp == 1) return world;
  std::vector<int> ranks;
  for (int i = 0; i < C; ++i) ranks.push_back(d * C + i);
  return world->sub_group("cp" + std::to_string(d), ranks);
}

void add_sharded_optimizer(TensorMap& out, dist::Group& g, const torch::nn::Module& model,
                           torch::optim::AdamW& opt, const std::vector<int>& owners) {
  const auto named = model.named_parameters();
  for (size_t i = 0; i < named.size(); ++i) {
    const at::Tensor& p = named[i].value();
    const int owner = owners.at(i);
    at::Tensor step = torch::full({1}, int64_t{-1}, torch::kLong);  // -1 = no state yet
    at::Tensor exp_avg = torch::zeros_like(p), exp_avg_sq = torch::zeros_like(p);
    if (g.rank() == owner) {
      const auto it = opt.state().find(p.unsafeGetTensorImpl());
      if (it != opt.state().end()) {
        const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
        step.fill_(s.step());
        exp_avg.copy_(s.exp_avg());
        exp_avg_sq.copy_(s.exp_avg_sq());
      }
    }
    if (p.is_cuda()) step = step.to(p.device());
    g.broadcast(step, owner, "optimizer state gather");
    const int64_t n = step.item<int64_t>();
    if (n < 0) continue;
    g.broadcast(exp_avg, owner, "optimizer state gather");
    g.broadcast(exp_avg_sq, owner, "optimizer state gather");
    if (g.rank() != 0) continue;
    const std::string k = "optim/" + named[i].key();
    out[k + "/exp_avg"] = exp_avg;
    out[k + "/exp_avg_sq"] = exp_avg_sq;
    out[k + "/step"] = torch::tensor(n, torch::kLong);
  }
}

}  // namespace lighthouse::train
