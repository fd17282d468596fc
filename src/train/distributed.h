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

// The 2-D mesh of dist.dp x dist.cp ranks: rank = dp_rank x cp + cp_rank, so a CP group is cp
// consecutive ranks (neighbours, on one host when cp divides the GPUs per host) and data
// parallel runs across the CP groups. When cp > 1, labels the group's errors with this rank's
// mesh coordinates and returns its CP group: `world` itself when dp = 1, else a sub-group
// joined now (collective over its members); nullptr when cp = 1 or there is no group.
std::shared_ptr<dist::Group> join_cp_group(const std::shared_ptr<dist::Group>& world, int64_t dp,
                                           int64_t cp);

// Every parameter's AdamW state, each from the rank that owns it (owners: dist::shard_owners),
// under the keys add_optimizer uses; filled on rank 0, left unchanged on the others.
// Collective: every rank calls it.
void add_sharded_optimizer(TensorMap& out, dist::Group& g, const torch::nn::Module& model,
                           torch::optim::AdamW& opt, const std::vector<int>& owners);

}  // namespace lighthouse::train
