// The one autocast scope: one device type's autocast state set for a scope and restored when
// it ends. Training and evaluation forwards run under bf16 autocast on CUDA (CPU runs fp32);
// activation recomputation (recompute.h) replays the forward's state in backward.
#pragma once

#include <ATen/ATen.h>

namespace lighthouse::model {

class AutocastScope {
 public:
  // Autocast on `type` set to `enabled` with `dtype`. With `weight_cache`, casts of weights are
  // cached until the outermost such scope ends; without it (recomputation, which runs after the
  // forward's scope) they are not, so no cached cast outlives the optimizer's in-place updates.
  AutocastScope(at::DeviceType type, bool enabled, at::ScalarType dtype, bool weight_cache);
  // bf16 autocast on CUDA with the weight cache when `cuda_bf16`; otherwise nothing changes.
  explicit AutocastScope(bool cuda_bf16);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  void enter(at::DeviceType type, bool enabled, at::ScalarType dtype, bool weight_cache);

  bool active_ = false, nested_ = false;
  at::DeviceType type_ = at::kCUDA;
  bool prev_enabled_ = false, prev_cache_ = true;
  at::ScalarType prev_dtype_ = at::kHalf;
};

}  // namespace lighthouse::model
