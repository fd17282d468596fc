// Autocast for the public ops (AutocastCPU and AutocastCUDA keys), as ATen registers
// scaled_dot_product_attention (policy lower_precision_fp): under torch.autocast / at::autocast
// every floating input on the autocast device (float64 excepted) is cast to that device's
// autocast dtype, then the op runs with autocast excluded. So q, k and v of mixed dtypes (RoPE
// promotes q and k to fp32 under autocast while v stays bf16) reach the op in one dtype, exactly
// as they reach stock SDPA. Integer plans (slots, inverse) pass unchanged.
#include <ATen/autocast_mode.h>
#include <torch/library.h>

#include <tuple>

#include "ops/handle.h"

namespace lighthouse::ops {
namespace {

using at::Tensor;
using Str = c10::string_view;

// Casts one argument to the autocast dtype of device type D (floating tensors on D only).
template <c10::DeviceType D>
Tensor cast(const Tensor& t) {
  return at::autocast::cached_cast(at::autocast::get_lower_precision_fp_from_device_type(D), t, D);
}

template <c10::DeviceType D>
std::optional<Tensor> cast(const std::optional<Tensor>& t) {
  return at::autocast::cached_cast(at::autocast::get_lower_precision_fp_from_device_type(D), t, D);
}

// Autocast of device type D off for the redispatch.
template <c10::DeviceType D>
struct NoAutocast {
  c10::impl::ExcludeDispatchKeyGuard guard{
      at::autocast::get_autocast_dispatch_key_from_device_type(D)};
};

template <c10::DeviceType D>
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t levels, int64_t pool,
                 int64_t topk, int64_t tile_topk, Str scorer, Str sdpa, int64_t dilation,
                 Str selection) {
  NoAutocast<D> off;
  using Sig = Tensor(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t,
                     int64_t, Str, Str, int64_t, Str);
  static const auto op = op_handle<Sig>("lighthouse::attention");
  return op.call(cast<D>(q), cast<D>(k), cast<D>(v), levels, pool, topk, tile_topk, scorer, sdpa,
                 dilation, selection);
}

template <c10::DeviceType D>
Tensor attention_with_plan(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& slots,
                           const Tensor& inverse, int64_t levels, int64_t pool, Str sdpa,
                           bool check_plan) {
  NoAutocast<D> off;
  using Sig = Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                     int64_t, int64_t, Str, bool);
  static const auto op = op_handle<Sig>("lighthouse::attention_with_plan");
  return op.call(cast<D>(q), cast<D>(k), cast<D>(v), slots, inverse, levels, pool, sdpa,
                 check_plan);
}

template <c10::DeviceType D>
std::tuple<Tensor, Tensor> plan(const Tensor& q, const Tensor& k, int64_t levels, int64_t pool,
                                int64_t topk, int64_t tile_topk, Str scorer,
                                const std::optional<Tensor>& v, int64_t dilation,
                                Str selection) {
  NoAutocast<D> off;
  using Sig = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, int64_t, int64_t, int64_t,
                                         int64_t, Str, const std::optional<Tensor>&, int64_t,
                                         Str);
  static const auto op = op_handle<Sig>("lighthouse::plan");
  return op.call(cast<D>(q), cast<D>(k), levels, pool, topk, tile_topk, scorer, cast<D>(v),
                 dilation, selection);
}

template <c10::DeviceType D>
Tensor dense_attention(const Tensor& q, const Tensor& k, const Tensor& v, Str sdpa) {
  NoAutocast<D> off;
  using Sig = Tensor(const Tensor&, const Tensor&, const Tensor&, Str);
  static const auto op = op_handle<Sig>("lighthouse::dense_attention");
  return op.call(cast<D>(q), cast<D>(k), cast<D>(v), sdpa);
}

template <c10::DeviceType D>
std::tuple<Tensor, Tensor, Tensor> gather_subsequence(const Tensor& q, const Tensor& k,
                                                      const Tensor& v, const Tensor& slots,
                                                      const Tensor& inverse, int64_t levels,
                                                      int64_t pool, bool check_plan) {
  NoAutocast<D> off;
  using Sig = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                 const Tensor&, const Tensor&, int64_t, int64_t,
                                                 bool);
  static const auto op = op_handle<Sig>("lighthouse::gather_subsequence");
  return op.call(cast<D>(q), cast<D>(k), cast<D>(v), slots, inverse, levels, pool, check_plan);
}

template <c10::DeviceType D>
Tensor scatter_subsequence(const Tensor& o_tilde, const Tensor& slots, const Tensor& inverse,
                           int64_t levels, int64_t pool) {
  NoAutocast<D> off;
  using Sig = Tensor(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t);
  static const auto op = op_handle<Sig>("lighthouse::scatter_subsequence");
  return op.call(cast<D>(o_tilde), slots, inverse, levels, pool);
}

template <c10::DeviceType D>
void register_autocast(torch::Library& m) {
  m.impl("attention", &attention<D>);
  m.impl("attention_with_plan", &attention_with_plan<D>);
  m.impl("plan", &plan<D>);
  m.impl("dense_attention", &dense_attention<D>);
  m.impl("gather_subsequence", &gather_subsequence<D>);
  m.impl("scatter_subsequence", &scatter_subsequence<D>);
}

}  // namespace

TORCH_LIBRARY_IMPL(lighthouse, AutocastCPU, m) { register_autocast<c10::DeviceType::CPU>(m); }
TORCH_LIBRARY_IMPL(lighthouse, AutocastCUDA, m) { register_autocast<c10::DeviceType::CUDA>(m); }

}  // namespace lighthouse::ops
