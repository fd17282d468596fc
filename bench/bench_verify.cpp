// The check `lighthouse bench --device cuda` runs before timing a point: the CUDA slot table
// against the CPU cascade on the same scores, then the op's output and gradients against a
// reference written with stock torch ops in fp32 on the GPU (window means by reshape, the
// gather by at::gather, the scatter as a sum over levels through the inverse table, autograd
// for the backward), on the same plan. With the dilated scorer its GPU scores are also checked
// against the CPU reference on a prefix of the sequence (causal scores: a prefix's scores
// depend on the prefix only).
#include <torch/torch.h>

#include <algorithm>
#include <iostream>
#include <tuple>

#include "bench/bench.h"
#include "lighthouse/lighthouse.h"
#include "lighthouse/stages.h"

namespace lighthouse::cli {
namespace {

double rel(const at::Tensor& a, const at::Tensor& ref) {
  const at::Tensor r = ref.to(at::kFloat);
  if (!a.isfinite().all().item<bool>()) return INFINITY;
  return (a.to(at::kFloat) - r).abs().max().item<double>() /
         std::max(r.abs().max().item<double>(), 1e-30);
}

// All levels of x for every query head: [B, H, P, D] (level l at rows off(l)).
at::Tensor level_table(const at::Tensor& x, const Geometry& g, int64_t H) {
  const int64_t B = x.size(0), N = x.size(1), Hx = x.size(2), D = x.size(3);
  std::vector<at::Tensor> parts = {x};
  for (int64_t l = 1; l < g.L; ++l)  // levels >= 1 cover the prefix Nf (SPEC.md §2)
    parts.push_back(
        x.narrow(1, 0, g.Nf).reshape({B, g.level_len[l], g.window[l], Hx, D}).mean(2));
  at::Tensor t = at::cat(parts, 1).transpose(1, 2);  // [B, Hx, P, D]
  return Hx == H ? t : t.repeat_interleave(H / Hx, 1);
}

}  // namespace

VerifyResult verify_lighthouse(const at::Tensor& q_in, const at::Tensor& k_in,
                               const at::Tensor& v_in, const at::Tensor& dout, const Config& cfg) {
  const int64_t B = q_in.size(0), N = q_in.size(1), H = q_in.size(2), D = q_in.size(3);
  Geometry g;
  std::string err;
  TORCH_CHECK(make_geometry(cfg, N, &g, &err), err);
  VerifyResult r;
  const at::Tensor q = q_in.detach(), k = k_in.detach(), v = v_in.detach();

  // Plan: the CUDA cascade and the CPU reference on the same fp32 scores.
  at::Tensor sq, sk;  // [B, H, P], [B, Hkv or H, P]
  if (cfg.scorer == Scorer::Dilated) {
    std::tie(sq, sk) = stages::dilated_score(q, k, v, g.L, g.p, cfg.dilation);
    const int64_t n = std::min<int64_t>(N, 2048);  // the CPU reference is Θ(n²): a prefix
    {
      auto gpu = [&](const at::Tensor& x) { return x.narrow(0, 0, 1).narrow(1, 0, n); };
      auto cpu = [&](const at::Tensor& x) { return gpu(x).cpu().to(at::kDouble); };
      auto [gq, gk] = stages::dilated_score(gpu(q), gpu(k), gpu(v), g.L, g.p, cfg.dilation);
      auto [cq, ck] = stages::dilated_score(cpu(q), cpu(k), cpu(v), g.L, g.p, cfg.dilation);
      r.dilated_scores = std::max(rel(gq.cpu(), cq), rel(gk.cpu(), ck));
    }
  } else {
    sq = std::get<1>(stages::pool_score(q, g.L, g.p, false, true));
    sk = std::get<1>(stages::pool_score(k, g.L, g.p, false, true));
  }
  auto [slots, inverse] = stages::select(sq, sk, cfg);  // [B, H, S|P]
  auto [slots_c, inverse_c] = stages::select(sq.cpu(), sk.cpu(), cfg);
  r.plan_equal = at::equal(slots.cpu(), slots_c) && at::equal(inverse.cpu(), inverse_c);

  // The op under test, with that plan.
  at::Tensor q1 = q.clone().requires_grad_(), k1 = k.clone().requires_grad_();
  at::Tensor v1 = v.clone().requires_grad_();
  const at::Tensor o = attention(q1, k1, v1, Plan{slots, inverse}, cfg);  // [B, N, H, D]
  o.backward(dout);

  // The reference in fp32.
  at::Tensor q32 = q.to(at::kFloat).requires_grad_(), k32 = k.to(at::kFloat).requires_grad_();
  at::Tensor v32 = v.to(at::kFloat).requires_grad_();
  const at::Tensor idx = slots.unsqueeze(-1).expand({B, H, g.S, D});  // [B, H, S, D]
  auto take = [&](const at::Tensor& x) { return at::gather(level_table(x, g, H), 2, idx); };
  const at::Tensor ot = at::scaled_dot_product_attention(take(q32), take(k32), take(v32), {}, 0.0,
                                                         /*is_causal=*/true);  // [B, H, S, D]
  const auto opts = slots.options();
  at::Tensor o_ref = at::zeros({B, H, N, D}, ot.options());  // [B, H, N, D]
  for (int64_t l = 0; l < g.L; ++l) {
    if (g.level_len[l] == 0) continue;
    const at::Tensor e = at::div(at::arange(1, N + 1, opts), g.window[l], "floor") - 1;  // [N]
    const at::Tensor s = inverse.index_select(
        2, e.clamp(0, g.level_len[l] - 1) + g.level_offset[l]);              // [B, H, N]
    const at::Tensor keep = (s >= 0) & (e >= 0) & (e < g.level_len[l]);      // [B, H, N]
    const at::Tensor rows = at::gather(ot, 2, s.clamp_min(0).unsqueeze(-1).expand({B, H, N, D}));
    o_ref = o_ref + rows * keep.unsqueeze(-1);
  }
  o_ref = o_ref.transpose(1, 2);  // [B, N, H, D]
  (o_ref * dout.to(at::kFloat)).sum().backward();

  r.o = rel(o, o_ref.detach());
  r.dq = rel(q1.grad(), q32.grad());
  r.dk = rel(k1.grad(), k32.grad());
  r.dv = rel(v1.grad(), v32.grad());
  const double tol = q.scalar_type() == at::kFloat ? 1e-3 : (q.scalar_type() == at::kHalf ? 5e-3 : 3e-2);
  r.ok = r.plan_equal && r.o <= tol && r.dq <= tol && r.dk <= tol && r.dv <= tol &&
         r.dilated_scores <= tol;
  std::cout << "  verify: plan " << (r.plan_equal ? "== CPU" : "!= CPU") << ", rel. error o "
            << r.o << ", dq " << r.dq << ", dk " << r.dk << ", dv " << r.dv;
  if (r.dilated_scores >= 0) std::cout << ", dilated scores " << r.dilated_scores;
  std::cout << " (tol " << tol << ") " << (r.ok ? "OK" : "FAILED") << "\n" << std::flush;
  return r;
}

}  // namespace lighthouse::cli
