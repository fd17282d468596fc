// The autocast scope (autocast.h).
#include "model/autocast.h"

#include <ATen/autocast_mode.h>

namespace lighthouse::model {

AutocastScope::AutocastScope(at::DeviceType type, bool enabled, at::ScalarType dtype,
                             bool weight_cache) {
  enter(type, enabled, dtype, weight_cache);
}

AutocastScope::AutocastScope(bool cuda_bf16) {
  if (cuda_bf16) enter(at::kCUDA, true, at::kBFloat16, true);
}

void AutocastScope::enter(at::DeviceType type, bool enabled, at::ScalarType dtype,
                          bool weight_cache) {
  active_ = true;
  type_ = type;
  prev_enabled_ = at::autocast::is_autocast_enabled(type);
  prev_dtype_ = at::autocast::get_autocast_dtype(type);
  prev_cache_ = at::autocast::is_autocast_cache_enabled();
  at::autocast::set_autocast_enabled(type, enabled);
  at::autocast::set_autocast_dtype(type, dtype);
  if (!weight_cache) at::autocast::set_autocast_cache_enabled(false);
  nested_ = enabled && weight_cache;
  if (nested_) at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (nested_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, prev_enabled_);
  at::autocast::set_autocast_dtype(type_, prev_dtype_);
  at::autocast::set_autocast_cache_enabled(prev_cache_);
}

}  // namespace lighthouse::model
