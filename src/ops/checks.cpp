// Validation shared by every op: each failure names the argument, its value and the rule.
#include <c10/util/Exception.h>

#include "ops/stages.h"

namespace lighthouse::ops {

int64_t dim_size(const at::Tensor& t, int64_t dim) {
  return t.sym_size(dim).guard_int(__FILE__, __LINE__);
}

int64_t dim_numel(const at::Tensor& t) {
  int64_t n = 1;
  for (int64_t d = 0; d < t.dim(); ++d) n *= dim_size(t, d);
  return n;
}

Config config_from_args(int64_t levels, int64_t pool, int64_t topk, int64_t tile_topk,
                        std::string_view scorer, std::string_view sdpa, int64_t dilation,
                        std::string_view selection) {
  Config cfg;
  cfg.levels = levels;
  cfg.pool = pool;
  cfg.topk = topk;
  cfg.tile_topk = tile_topk;
  cfg.dilation = dilation;
  std::string err;
  cfg.scorer = parse_scorer(std::string(scorer), &err);
  TORCH_CHECK_VALUE(err.empty(), err);
  cfg.backend = backend_from_arg(sdpa);
  cfg.selection = parse_selection(std::string(selection), &err);
  TORCH_CHECK_VALUE(err.empty(), err);
  err = validate(cfg);
  TORCH_CHECK_VALUE(err.empty(), err);
  return cfg;
}

SdpaBackend backend_from_arg(std::string_view sdpa) {
  std::string err;
  SdpaBackend b = parse_backend(std::string(sdpa), &err);
  TORCH_CHECK_VALUE(err.empty(), err);
  return b;
}

void check_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const char* op) {
  TORCH_CHECK_VALUE(q.defined() && k.defined(), op, ": q and k must be defined tensors");
  TORCH_CHECK_VALUE(q.dim() == 4, op, ": q must be [B, N, H, D], got sizes ", q.sym_sizes());
  TORCH_CHECK_VALUE(k.dim() == 4, op, ": k must be [B, N, Hkv, D], got sizes ", k.sym_sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(q.scalar_type()),
                   op, ": q must be float32, float64, bfloat16 or float16, got ", q.scalar_type());
  TORCH_CHECK_TYPE(k.scalar_type() == q.scalar_type(), op, ": k dtype must equal q dtype ",
                   q.scalar_type(), ", got ", k.scalar_type());
  TORCH_CHECK_VALUE(k.device() == q.device(), op, ": k must be on q's device ", q.device(),
                    ", got ", k.device());
  TORCH_CHECK_VALUE(dim_numel(q) > 0, op, ": q must be non-empty, got sizes ", q.sym_sizes());
  TORCH_CHECK_VALUE(dim_numel(k) > 0, op, ": k must be non-empty, got sizes ", k.sym_sizes());
  TORCH_CHECK_VALUE(dim_size(k, 0) == dim_size(q, 0), op,
                    ": k batch size (dim 0) must equal q's B = ", dim_size(q, 0), ", got ",
                    dim_size(k, 0));
  TORCH_CHECK_VALUE(dim_size(k, 1) == dim_size(q, 1), op,
                    ": k sequence length (dim 1) must equal q's N = ", dim_size(q, 1), ", got ",
                    dim_size(k, 1));
  TORCH_CHECK_VALUE(dim_size(k, 3) == dim_size(q, 3), op,
                    ": k head dim (dim 3) must equal q's D = ", dim_size(q, 3), ", got ",
                    dim_size(k, 3));
  TORCH_CHECK_VALUE(dim_size(q, 2) % dim_size(k, 2) == 0, op, ": q heads H = ", dim_size(q, 2),
                    " must be a multiple of k heads Hkv = ", dim_size(k, 2), " (GQA)");
  if (!v.defined()) return;
  TORCH_CHECK_VALUE(v.dim() == 4, op, ": v must be [B, N, Hkv, D], got sizes ", v.sym_sizes());
  TORCH_CHECK_TYPE(v.scalar_type() == q.scalar_type(), op, ": v dtype must equal q dtype ",
                   q.scalar_type(), ", got ", v.scalar_type());
  TORCH_CHECK_VALUE(v.device() == q.device(), op, ": v must be on q's device ", q.device(),
                    ", got ", v.device());
  TORCH_CHECK_VALUE(v.sym_sizes() == k.sym_sizes(), op, ": v sizes must equal k sizes ",
                    k.sym_sizes(), ", got ", v.sym_sizes());
}

Geometry checked_geometry(const Config& cfg, int64_t N) {
  Geometry g;
  std::string err;
  TORCH_CHECK_VALUE(make_geometry(cfg, N, &g, &err), err);
  return g;
}

Geometry checked_levels(int64_t levels, int64_t pool, int64_t N) {
  Config cfg;
  cfg.levels = levels;
  cfg.pool = pool;
  cfg.topk = cfg.tile_topk;  // levels-only check: budgets are not used here
  std::string err = validate(cfg);
  TORCH_CHECK_VALUE(err.empty(), err);
  TORCH_CHECK_VALUE(N > 0, "sequence length N must be positive, got ", N);
  return level_geometry(levels, pool, N);
}

Geometry levels_from_pyramid(int64_t levels, int64_t pool, int64_t P, const char* what) {
  const int64_t N = seq_len_from_pyramid(P, levels, pool);
  TORCH_CHECK_VALUE(N > 0, what, ": pyramid dimension ", P,
                    " is not N + sum_{l>=1} Nf / p^l (Nf = N rounded down to a multiple of "
                    "p^(L-1)) for levels = ", levels, ", pool = ", pool);
  return checked_levels(levels, pool, N);
}

void check_plan(const at::Tensor& q, const at::Tensor& slots, const at::Tensor& inverse,
                const Geometry& g) {
  TORCH_CHECK_TYPE(slots.scalar_type() == at::kLong, "slots must be int64, got ",
                   slots.scalar_type());
  TORCH_CHECK_TYPE(inverse.scalar_type() == at::kLong, "inverse must be int64, got ",
                   inverse.scalar_type());
  TORCH_CHECK_VALUE(slots.device() == q.device(), "slots must be on q's device ", q.device(),
                    ", got ", slots.device());
  TORCH_CHECK_VALUE(inverse.device() == q.device(), "inverse must be on q's device ", q.device(),
                    ", got ", inverse.device());
  TORCH_CHECK_VALUE(slots.dim() == 3 && dim_size(slots, 0) == dim_size(q, 0) &&
                        dim_size(slots, 1) == dim_size(q, 2) && dim_size(slots, 2) > 0,
                    "slots must be [B, H, S] = [", dim_size(q, 0), ", ", dim_size(q, 2),
                    ", S], got ", slots.sym_sizes());
  TORCH_CHECK_VALUE(inverse.dim() == 3 && dim_size(inverse, 0) == dim_size(q, 0) &&
                        dim_size(inverse, 1) == dim_size(q, 2) && dim_size(inverse, 2) == g.P,
                    "inverse must be [B, H, P] = [", dim_size(q, 0), ", ", dim_size(q, 2), ", ",
                    g.P, "] (P = N + sum_{l>=1} Nf / p^l for N = ", g.N, ", levels = ", g.L, ", pool = ", g.p,
                    "), got ", inverse.sym_sizes());
}

}  // namespace lighthouse::ops
