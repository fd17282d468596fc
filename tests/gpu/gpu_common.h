// Helpers of the GPU tests (CTest label `gpu`, run on the device machine by
// scripts/gpu-check.sh): skip without a device, copies to the GPU, allocator poisoning, and the
// per-dtype tolerances of a fast path against the float64 CPU reference.
#pragma once

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <ATen/ATen.h>

#include <limits>

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

// rel_err (max |a - b| / max |b|) allowed for a result computed in `dtype` on the GPU against
// float64 on the CPU: a few roundings of the dtype.
inline double tolerance(at::ScalarType dtype) {
  switch (dtype) {
    case at::kBFloat16: return 3e-2;
    case at::kHalf: return 4e-3;
    default: return 2e-4;
  }
}

}  // namespace lighthouse::test
