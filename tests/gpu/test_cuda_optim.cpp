// optim.fused on CUDA: ATen's multi-tensor AdamW kernel against torch's per-tensor loop on the
// same random parameters and gradients (tests/train/adamw_parity.h).
#include <gtest/gtest.h>

#include "train/adamw_parity.h"

namespace lighthouse::train {
namespace {

TEST(CudaOptim, FusedAdamwMatchesThePerTensorLoop) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto r = testing::adamw_fused_vs_loop(torch::Device(torch::kCUDA));
  EXPECT_LT(r.params, 1e-5);
  EXPECT_LT(r.exp_avg, 1e-5);
  EXPECT_LT(r.exp_avg_sq, 1e-5);
  EXPECT_EQ(r.steps_fused, 3);
  EXPECT_EQ(r.steps_loop, 3);
}

}  // namespace
}  // namespace lighthouse::train
