// Data parallel over a Group: gradients averaged in flat buckets, and ZeRO-1 ownership (each
// parameter's optimizer state lives on one rank, which updates it and broadcasts the result).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "dist/group.h"

namespace lighthouse::dist {

// Averages every parameter's gradient over the group (a missing gradient counts as zeros and
// is created). Gradients are packed into flat buckets of about `bucket_bytes` in parameter
// order, one all-reduce per bucket, all in flight together.
void average_gradients(Group& g, const std::vector<at::Tensor>& params, int64_t bucket_bytes);

// The same averaging overlapped with backward (dist.overlap): a post-accumulate-grad hook on
// every parameter marks it ready; a bucket (the same buckets as average_gradients) whose
// parameters are all ready starts its all-reduce at once, the last bucket first and in
// descending order on every rank, while backward goes on. finish() starts what is left
// (parameters that got no gradient count as zeros), waits, and writes the averages into the
// gradients: the same values as average_gradients. Hooks act only between arm() and finish(),
// so arm() goes before the last micro-batch's backward of a step.
class OverlappedAverager {
 public:
  OverlappedAverager(Group& g, std::vector<at::Tensor> params, int64_t bucket_bytes);
  ~OverlappedAverager();
  OverlappedAverager(const OverlappedAverager&) = delete;
  OverlappedAverager& operator=(const OverlappedAverager&) = delete;

  void arm();
  void finish();
  // Buckets whose all-reduce started inside backward in the last step (for the record).
  int launched_in_backward() const { return in_backward_; }

  struct State;  // buckets, readiness and transfers in flight (data_parallel.cpp)

 private:
  std::unique_ptr<State> s_;
  int in_backward_ = 0;
};

// The owning rank of each parameter: greedy, largest remaining load first, in parameter
// order, so every rank computes the same table. Depends only on the shapes and `ranks`.
std::vector<int> shard_owners(const std::vector<at::Tensor>& params, int ranks);

// Every parameter from its owner to all ranks (one flat broadcast per owner).
void broadcast_from_owners(Group& g, const std::vector<at::Tensor>& params,
                           const std::vector<int>& owners);

}  // namespace lighthouse::dist
