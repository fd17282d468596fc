// The public C++ API (include/lighthouse/lighthouse.h, subsequence.h): thin calls of the
// registered ops.
#include "lighthouse/lighthouse.h"
#include "lighthouse/subsequence.h"
#include "ops/handle.h"

namespace lighthouse {

Plan plan(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const Config& cfg) {
  static auto op = ops::op_handle<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, int64_t, int64_t, int64_t, int64_t,
      c10::string_view, const std::optional<at::Tensor>&, int64_t, c10::string_view)>(
      "lighthouse::plan");
  const std::optional<at::Tensor> v_opt =
      v.defined() ? std::optional<at::Tensor>(v) : std::nullopt;
  auto [slots, inverse] = op.call(q, k, cfg.levels, cfg.pool, cfg.topk, cfg.tile_topk,
                                  scorer_name(cfg.scorer), v_opt, cfg.dilation,
                                  selection_name(cfg.selection));
  return {slots, inverse};
}

Plan plan(const at::Tensor& q, const at::Tensor& k, const Config& cfg) {
  return plan(q, k, at::Tensor(), cfg);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const Config& cfg) {
  static auto op = ops::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     int64_t, int64_t, int64_t, int64_t, c10::string_view,
                                     c10::string_view, int64_t, c10::string_view)>(
      "lighthouse::attention");
  return op.call(q, k, v, cfg.levels, cfg.pool, cfg.topk, cfg.tile_topk, scorer_name(cfg.scorer),
                 backend_name(cfg.backend), cfg.dilation, selection_name(cfg.selection));
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const Plan& plan, const Config& cfg, bool check_plan) {
  static auto op = ops::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const at::Tensor&, const at::Tensor&, int64_t, int64_t,
                                     c10::string_view, bool)>("lighthouse::attention_with_plan");
  return op.call(q, k, v, plan.slots, plan.inverse, cfg.levels, cfg.pool,
                 backend_name(cfg.backend), check_plan);
}

SubSequence gather(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                   const Plan& plan, const Config& cfg, bool check_plan) {
  static auto op = ops::op_handle<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
      const at::Tensor&, int64_t, int64_t, bool)>("lighthouse::gather_subsequence");
  auto [qt, kt, vt] =
      op.call(q, k, v, plan.slots, plan.inverse, cfg.levels, cfg.pool, check_plan);
  return {qt, kt, vt};
}

at::Tensor scatter(const at::Tensor& o_tilde, const Plan& plan, const Config& cfg) {
  static auto op = ops::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             const at::Tensor&, int64_t, int64_t)>(
      "lighthouse::scatter_subsequence");
  return op.call(o_tilde, plan.slots, plan.inverse, cfg.levels, cfg.pool);
}

at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           SdpaBackend backend) {
  static auto op = ops::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     c10::string_view)>("lighthouse::dense_attention");
  return op.call(q, k, v, backend_name(backend));
}

}  // namespace lighthouse
