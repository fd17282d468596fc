// Value validation of user-supplied plans (attention_with_plan), once at the op boundary and
// identical on every device: slots in [0, P), inverse in [-1, S), and inverse exactly the
// inverse of slots. One implementation in ATen ops serves CPU and CUDA; on CUDA it costs one
// host sync for the four flags (messages with the offending range are built only on failure).
// Plans made by the op itself are not checked. Shapes are checked before (check_plan). The
// range check and its message serve the CPU stage kernels too (cpu_impl.cpp).
#include <torch/library.h>

#include "ops/stages.h"

namespace lighthouse::ops {

void check_index_range(const at::Tensor& t, int64_t lo, int64_t hi, const char* what) {
  const int64_t mn = t.min().item<int64_t>(), mx = t.max().item<int64_t>();
  TORCH_CHECK_VALUE(mn >= lo && mx < hi, what, " values must lie in [", lo, ", ", hi,
                    "), got [", mn, ", ", mx, "]; pass a plan made by lighthouse::plan");
}

namespace {

// slots [B, H, S], inverse [B, H, P] -> a copy of slots, returned so that the check stays in
// traced graphs (its result is what the later stages read).
at::Tensor check_plan_impl(const at::Tensor& slots, const at::Tensor& inverse) {
  const int64_t S = slots.size(2), P = inverse.size(2);
  const at::Tensor safe = slots.clamp(0, P - 1);                       // [B, H, S]
  const at::Tensor back = inverse.gather(2, safe);                     // [B, H, S]
  const at::Tensor want = at::arange(S, slots.options()).expand_as(back);
  const at::Tensor flags = at::stack({slots.lt(0).logical_or(slots.ge(P)).any(),
                                      inverse.lt(-1).logical_or(inverse.ge(S)).any(),
                                      back.ne(want).any(),
                                      inverse.ge(0).sum().ne(slots.numel())})
                               .cpu();  // [4] bool: the one sync
  const bool* f = flags.data_ptr<bool>();
  if (f[0]) check_index_range(slots, 0, P, "slots");
  if (f[1]) check_index_range(inverse, -1, S, "inverse");
  TORCH_CHECK_VALUE(!f[2] && !f[3],
                    "inverse must be the inverse of slots (inverse[slots[s]] == s for every "
                    "slot, -1 for every pyramid index not in slots); pass a plan made by "
                    "lighthouse::plan");
  return slots.clone();
}

at::Tensor check_plan_meta(const at::Tensor& slots, const at::Tensor& /*inverse*/) {
  return at::empty_like(slots);
}

}  // namespace

TORCH_LIBRARY_IMPL(lighthouse, CompositeExplicitAutograd, m) {
  m.impl("_check_plan", &check_plan_impl);
}

TORCH_LIBRARY_IMPL(lighthouse, Meta, m) { m.impl("_check_plan", &check_plan_meta); }

}  // namespace lighthouse::ops
