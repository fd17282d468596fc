// The all-reduce overlapped with backward (dist::OverlappedAverager) gives bitwise the
// averages of dist::average_gradients after backward, with buckets started during backward,
// over 2 and 4 in-process Gloo ranks and two micro-batches.
#include <gtest/gtest.h>

#include "dist/data_parallel.h"
#include "dist/ranks.h"

namespace lighthouse::dist {
namespace {

torch::nn::Sequential small_net() {
  torch::manual_seed(3);
  return torch::nn::Sequential(torch::nn::Linear(8, 16), torch::nn::Tanh(),
                               torch::nn::Linear(16, 16), torch::nn::Tanh(),
                               torch::nn::Linear(16, 4));
}

void check_overlap(int W) {
  const int64_t bucket_bytes = 300;  // several buckets of one or two parameters
  std::vector<torch::nn::Sequential> after(W), during(W);
  std::vector<std::vector<at::Tensor>> inputs(W);
  for (int r = 0; r < W; ++r) {
    after[r] = small_net();
    during[r] = small_net();
    at::manual_seed(50 + r);
    inputs[r] = {torch::randn({5, 8}), torch::randn({5, 8})};  // two micro-batches per rank
  }
  std::vector<std::vector<at::Tensor>> ref(W), got(W);
  std::vector<int> started(W);
  run_ranks(W, [&](Group& g) {
    const int r = g.rank();
    const auto pa = after[r]->parameters();
    for (const auto& x : inputs[r]) after[r]->forward(x).square().sum().backward();
    average_gradients(g, pa, bucket_bytes);
    for (const auto& p : pa) ref[r].push_back(p.grad().clone());

    const auto pd = during[r]->parameters();
    OverlappedAverager avg(g, pd, bucket_bytes);
    for (int step = 0; step < 2; ++step) {  // the second step re-arms the same hooks
      for (const auto& p : pd) p.mutable_grad() = at::Tensor();
      for (size_t a = 0; a < inputs[r].size(); ++a) {
        if (a + 1 == inputs[r].size()) avg.arm();
        during[r]->forward(inputs[r][a]).square().sum().backward();
      }
      avg.finish();
    }
    for (const auto& p : pd) got[r].push_back(p.grad().clone());
    started[r] = avg.launched_in_backward();
  });
  for (int r = 0; r < W; ++r) {
    ASSERT_EQ(got[r].size(), ref[r].size());
    for (size_t i = 0; i < ref[r].size(); ++i) {
      EXPECT_TRUE(torch::equal(got[r][i], ref[r][i])) << W << " ranks, rank " << r << " param " << i;
      EXPECT_TRUE(torch::equal(got[r][i], got[0][i])) << "ranks disagree on param " << i;
    }
    EXPECT_GT(started[r], 1) << "no bucket started during backward";
  }
  EXPECT_GT(ref[0][0].abs().max().item<double>(), 0.0);
}

TEST(OverlappedAverager, TwoRanksEqualTheAverageAfterBackward) { check_overlap(2); }
TEST(OverlappedAverager, FourRanksEqualTheAverageAfterBackward) { check_overlap(4); }

}  // namespace
}  // namespace lighthouse::dist
