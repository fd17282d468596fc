// The public C++ API (include/lighthouse/lighthouse.h): thin calls of the registered ops.
#include "lighthouse/lighthouse.h"
#include "ops/handle.h"

namespace lighthouse {

Plan plan(const at::Tensor& q, const at::Tensor& k, const Config& cfg) {
  static auto op = ops::op_handle<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, int64_t, int64_t, int64_t, int64_t, c10::string_view,
      c10::string_view)>("lighthouse::plan");
  auto [slots, inverse] = op.call(q, k, cfg.levels, cfg.pool, cfg.topk, cfg.tile_topk,
                                  scorer_name(cfg.scorer), selection_name(cfg.selection));
  return {slots, inverse};
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const Config& cfg) {
  static auto op = ops::op_handle<at::Tensor(
      const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t, int64_t, int64_t,
      c10::string_view, c10::string_view, c10::string_view)>("lighthouse::attention");
  return op.call(q, k, v, cfg.levels, cfg.pool, cfg.topk, cfg.tile_topk, scorer_name(cfg.scorer),
                 backend_name(cfg.backend), selection_name(cfg.selection));
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const Plan& plan, const Config& cfg, bool check_plan) {
  static auto op = ops::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const at::Tensor&, const at::Tensor&, int64_t, int64_t,
                                     c10::string_view, bool)>("lighthouse::attention_with_plan");
  return op.call(q, k, v, plan.slots, plan.inverse, cfg.levels, cfg.pool,
                 backend_name(cfg.backend), check_plan);
}

at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           SdpaBackend backend) {
  static auto op = ops::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     c10::string_view)>("lighthouse::dense_attention");
  return op.call(q, k, v, backend_name(backend));
}

}  // namespace lighthouse
