// Data parallel over a Group: gradients averaged in flat buckets, and ZeRO-1 ownership (each
// parameter's optimizer state lives on one rank, which updates it and broadcasts the result).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "dist/group.h"

namespace lighthouse::dist {

// Averages every parameter's gradient over the group (a missing gradient counts as zeros and
// is created). Gradients are packed into flat buckets of about `bucket_bytes` in parameter
// order, one all-reduce per bucket, all in flight together.
void average_gradients(Group& g, const std::vector<at::Tensor>& params, int64_t bucket_bytes);

// The owning rank of each parameter: greedy, largest remaining load first, in parameter
// order, so every rank computes the same table. Depends only on the shapes and `ranks`.
std::vector<int> shard_owners(const std::vector<at::Tensor>& params, int ranks);

// Every parameter from its owner to all ranks (one flat broadcast per owner).
void broadcast_from_owners(Group& g, const std::vector<at::Tensor>& params,
                           const std::vector<int>& owners);

}  // namespace lighthouse::dist
