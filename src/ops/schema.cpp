// The one schema file: every `lighthouse::` torch op is defined here. Implementations
// register next to their code (cpu_impl.cpp, cuda_impl.cpp, meta_impl.cpp, autograd.cpp,
// composite.cpp, autocast.cpp: the public ops under autocast, cast like SDPA).
//
// Public ops (layout q [B, N, H, D], k/v [B, N, Hkv, D]):
//   attention, attention_with_plan, plan, dense_attention, and the two halves of a plan's
//   attention for callers that run the inner SDPA themselves (context parallel, src/dist/):
//   gather_subsequence (pyramid + gather) and scatter_subsequence (scatter back)
// Stage ops (underscore; shapes in src/ops/stages.h):
//   _pool_score, _pool_score_qkv (q, k and v in one call: one launch on CUDA), _dilated_score,
//   _select, _gather, _gather_backward, _scatter, _scatter_backward,
//   _gather_qkv and _gather_backward_qkv (the gathers of q, k and v as one op: one launch backward),
//   _check_plan (value validation of a user plan, plan_check.cpp)
#include <torch/library.h>

TORCH_LIBRARY(lighthouse, m) {
  m.def(
      "attention(Tensor q, Tensor k, Tensor v, int levels, int pool, int topk, "
      "int tile_topk=128, str scorer=\"norm\", str sdpa=\"auto\", int dilation=4, "
      "str selection=\"causal\") -> Tensor");
  m.def(
      "attention_with_plan(Tensor q, Tensor k, Tensor v, Tensor slots, Tensor inverse, "
      "int levels, int pool, str sdpa=\"auto\", bool check_plan=True) -> Tensor");
  m.def(
      "plan(Tensor q, Tensor k, int levels, int pool, int topk, int tile_topk=128, "
      "str scorer=\"norm\", Tensor? v=None, int dilation=4, str selection=\"causal\") "
      "-> (Tensor slots, Tensor inverse)");
  m.def("dense_attention(Tensor q, Tensor k, Tensor v, str sdpa=\"auto\") -> Tensor");
  m.def(
      "gather_subsequence(Tensor q, Tensor k, Tensor v, Tensor slots, Tensor inverse, "
      "int levels, int pool, bool check_plan=True) -> (Tensor q_tilde, Tensor k_tilde, "
      "Tensor v_tilde)");
  m.def(
      "scatter_subsequence(Tensor o_tilde, Tensor slots, Tensor inverse, int levels, int pool) "
      "-> Tensor");

  m.def(
      "_pool_score(Tensor x, int levels, int pool, bool want_pyramid=True, "
      "bool want_score=True) -> (Tensor pyramid, Tensor score)");
  m.def(
      "_pool_score_qkv(Tensor q, Tensor k, Tensor v, int levels, int pool, bool want_score=True) "
      "-> (Tensor pyr_q, Tensor pyr_k, Tensor pyr_v, Tensor sq, Tensor sk)");
  m.def(
      "_dilated_score(Tensor q, Tensor k, Tensor v, int levels, int pool, int dilation) "
      "-> (Tensor sq, Tensor sk)");
  m.def(
      "_select(Tensor sq, Tensor sk, int levels, int pool, int topk, int tile_topk, "
      "str selection=\"causal\", Tensor? prev_sq=None, Tensor? prev_sk=None) "
      "-> (Tensor slots, Tensor inverse)");
  m.def("_gather(Tensor x, Tensor pyramid, Tensor slots, Tensor inverse, int levels, int pool) -> Tensor");
  m.def("_gather_backward(Tensor grad, Tensor inverse, int levels, int pool, int kv_heads) -> Tensor");
  m.def(
      "_gather_qkv(Tensor q, Tensor k, Tensor v, Tensor pyr_q, Tensor pyr_k, Tensor pyr_v, "
      "Tensor slots, Tensor inverse, int levels, int pool) -> (Tensor q_tilde, Tensor k_tilde, "
      "Tensor v_tilde)");
  m.def(
      "_gather_backward_qkv(Tensor grad_q, Tensor grad_k, Tensor grad_v, Tensor inverse, "
      "int levels, int pool, int kv_heads) -> (Tensor dq, Tensor dk, Tensor dv)");
  m.def("_scatter(Tensor o_tilde, Tensor slots, Tensor inverse, int levels, int pool) -> Tensor");
  m.def("_scatter_backward(Tensor grad, Tensor slots, int levels, int pool) -> Tensor");
  m.def("_check_plan(Tensor slots, Tensor inverse) -> Tensor");
}
