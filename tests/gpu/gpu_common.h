// Helpers of the GPU tests (CTest label `gpu`, run on the device machine by
// scripts/gpu-check.sh): skip without a device, copies to the GPU and allocator poisoning; the
// per-dtype tolerances come from the test-support library (support/tolerance.h).
#pragma once

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <ATen/ATen.h>

#include <limits>

#include "support/tolerance.h"

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"

namespace lighthouse::test {

inline at::Tensor to_cuda(const at::Tensor& t) { return t.to(at::Device(at::kCUDA)); }

// Fills `bytes` of the CUDA caching allocator with NaN and frees them, so the next outputs are
// likely carved from poisoned memory: an element a kernel forgets to write shows as NaN.
inline void poison_allocator(int64_t bytes) {
  at::empty({bytes / 4}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA))
      .fill_(std::numeric_limits<float>::quiet_NaN());
}

}  // namespace lighthouse::test
