// Ops-layer internals: argument validation shared by every op, and typed dispatcher calls
// of the stage ops so that composites reach CPU, CUDA and Meta kernels alike.
//
// Stage op shapes: include/lighthouse/stages.h.
#pragma once

#include <ATen/ATen.h>

#include <string_view>
#include <tuple>

#include "lighthouse/config.h"
#include "lighthouse/stages.h"

namespace lighthouse::ops {

// Sizes as plain integers. Under symbolic tracing (torch.compile, opcheck's dynamic-shape
// test) each read specializes that dimension with a guard: the plan geometry is integer
// arithmetic on N, so the ops trace with static shapes.
int64_t dim_size(const at::Tensor& t, int64_t dim);
int64_t dim_numel(const at::Tensor& t);

Config config_from_args(int64_t levels, int64_t pool, int64_t topk, int64_t tile_topk,
                        std::string_view scorer, std::string_view sdpa, int64_t dilation = 4,
                        std::string_view selection = "causal");
SdpaBackend backend_from_arg(std::string_view sdpa);

// Checks q, k (and v when defined) against SPEC.md §2; `op` names the caller in messages.
void check_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const char* op);

// Full geometry for cfg at sequence length N; errors name the violated parameter.
Geometry checked_geometry(const Config& cfg, int64_t N);
// Level geometry for the stage ops (levels and pool validated, N > 0).
Geometry checked_levels(int64_t levels, int64_t pool, int64_t N);
// Level geometry recovered from a pyramid-sized dimension P of `what`.
Geometry levels_from_pyramid(int64_t levels, int64_t pool, int64_t P, const char* what);

// Checks a plan (slots [B, H, S], inverse [B, H, P]) against q and the level geometry.
void check_plan(const at::Tensor& q, const at::Tensor& slots, const at::Tensor& inverse,
                const Geometry& g);

// Argument checks of the stage ops (stage_checks.cpp), run by stage_impls.h before any backend.
Geometry check_pool_score(const at::Tensor& x, int64_t levels, int64_t pool);
// q, k and v of _pool_score_qkv: check_qkv's rules (v required), then _pool_score's.
Geometry check_pool_score_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              int64_t levels, int64_t pool);
Geometry check_dilated_score(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             int64_t levels, int64_t pool, int64_t dilation);
// prev_sq / prev_sk: the optional halo of the causal rule (lighthouse/stages.h), both or neither.
Geometry check_select(const at::Tensor& sq, const at::Tensor& sk, const Config& cfg,
                      const at::Tensor& prev_sq = at::Tensor(),
                      const at::Tensor& prev_sk = at::Tensor());
Geometry check_gather(const at::Tensor& x, const at::Tensor& pyramid, const at::Tensor& slots,
                      const at::Tensor& inverse, int64_t levels, int64_t pool);
Geometry check_gather_backward(const at::Tensor& grad, const at::Tensor& inverse, int64_t levels,
                               int64_t pool, int64_t kv_heads);
// The three gradients of _gather_backward_qkv: each as _gather_backward's (q's with kv_heads =
// H), one shape, dtype and device.
Geometry check_gather_backward_qkv(const at::Tensor& grad_q, const at::Tensor& grad_k,
                                   const at::Tensor& grad_v, const at::Tensor& inverse,
                                   int64_t levels, int64_t pool, int64_t kv_heads);
Geometry check_scatter(const at::Tensor& o_tilde, const at::Tensor& slots,
                       const at::Tensor& inverse, int64_t levels, int64_t pool);
Geometry check_scatter_backward(const at::Tensor& grad, const at::Tensor& slots, int64_t levels,
                                int64_t pool);

// The typed calls of the stage ops and sdpa_causal are public: include/lighthouse/stages.h.
using stages::dilated_score;
using stages::gather;
using stages::gather_backward;
using stages::gather_backward_qkv;
using stages::gather_qkv;
using stages::pool_score;
using stages::pool_score_qkv;
using stages::scatter;
using stages::scatter_backward;
using stages::sdpa_causal;
using stages::select;

// Validates a user plan's values (any device, one host sync); returns a copy of slots.
at::Tensor check_plan_values(const at::Tensor& slots, const at::Tensor& inverse);
// Throws naming `what` unless every value of the index tensor t lies in [lo, hi) (plan_check.cpp).
void check_index_range(const at::Tensor& t, int64_t lo, int64_t hi, const char* what);

// The dilated scores with stock SDPA on strided views (dilated_sdpa.cpp): the CUDA kernel of
// _dilated_score, device-agnostic ATen (so CPU tests check it against the reference).
std::tuple<at::Tensor, at::Tensor> dilated_score_sdpa(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& v, int64_t dilation,
                                                      const Geometry& g);

}  // namespace lighthouse::ops
