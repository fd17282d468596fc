// The trainer's side of data parallel: joining the process group the launch describes, and the
// full AdamW state of a ZeRO-1 sharded optimizer gathered for rank 0's checkpoint.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "dist/group.h"
#include "train/checkpoint.h"
#include "train/run_config.h"

namespace lighthouse::train {

// The process group of this run, or nullptr for a single process. Checks dist.world_size
// against the launch (ConfigError naming it) and `device` ("cuda" becomes cuda:LOCAL_RANK).
std::shared_ptr<dist::Group> join_group(const RunConfig& cfg, const dist::LaunchEnv& env,
                                        torch::Device& device);

// Every parameter's AdamW state, each from the rank that owns it (owners: dist::shard_owners),
// under the keys add_optimizer uses; filled on rank 0, left unchanged on the others.
// Collective: every rank calls it.
void add_sharded_optimizer(TensorMap& out, dist::Group& g, const torch::nn::Module& model,
                           torch::optim::AdamW& opt, const std::vector<int>& owners);

}  // namespace lighthouse::train
