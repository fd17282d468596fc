// The compute lower bound of a training step for `lighthouse bench train`: the model's FLOPs
// (model/flops.h) at the rates this device reaches, measured in the same process — a large
// matrix product for the weight products and dense causal SDPA forward + backward (the model's
// backend) for attention. Memory-bound work (norms, elementwise, the optimizer) is not in it.
#pragma once

#include <torch/torch.h>

#include "lighthouse/config.h"
#include "model/flops.h"

namespace lighthouse::cli {

struct DevicePeaks {
  double gemm_tflops = 0;       // one square matrix product, `dtype`
  double attention_tflops = 0;  // causal SDPA forward + backward (model FLOPs: 3.5x forward)
};

DevicePeaks measure_peaks(const torch::Device& device, at::ScalarType dtype, int64_t heads,
                          int64_t head_dim, SdpaBackend backend);

// Seconds of a step of `flops` at `peaks` (the dilated scorer's strided attention at the
// attention rate, forward only).
double lower_bound_s(const model::StepFlops& flops, const DevicePeaks& peaks);

// End-to-end speedup of a two-stage run (stage1 Lighthouse steps, then dense) against dense
// from scratch for the same total steps, from the measured step times.
double two_stage_speedup(int64_t total_steps, int64_t stage1_steps, double dense_step_s,
                         double lighthouse_step_s);

}  // namespace lighthouse::cli
