// Any sequence length on CUDA (SPEC.md §2): on lengths with a last shorter tile, tiles smaller
// than m, a level-0 tail and N < p^(L-1), the CUDA stages equal the CPU reference (scores of
// the tail included, bitwise plans from identical fp32 scores for both selection rules, every
// output row written: the allocator is poisoned with NaN first), the whole op's output and
// gradients match float64 on the CPU, the dilated scorer serves δ not dividing N, and storage
// after position N is never read.
// Run: test_cuda --gtest_filter='*CudaRagged*'.
#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "gpu/gpu_common.h"
#include "lighthouse/config.h"
#include "ops/stages.h"
#include "support/common.h"

namespace lighthouse::test {
namespace {

// B N H Hkv D L p k m (see tests/ops/test_ragged.cpp for the tile arithmetic).
std::vector<Shape> ragged_gpu_shapes() {
  return {{1, 1, 2, 1, 8, 3, 4, 16, 8},        // N = 1: tail only
          {2, 4, 2, 2, 16, 3, 4, 16, 8},       // N = p < p^(L-1)
          {1, 1000, 2, 1, 64, 3, 4, 16, 8},    // tiles 31, 31, tail 8
          {1, 1000, 4, 2, 32, 2, 8, 24, 8},    // L 2, tiles 42, 42, 41
          {1, 1000, 2, 2, 8, 4, 2, 64, 4},     // L 4, 15 tiles of 8 and one of 5
          {2, 5000, 2, 1, 128, 3, 4, 40, 8},   // tiles 63 x 4 + 60, tail 8
          {1, 5000, 2, 1, 16, 3, 2, 256, 16},  // 15 tiles of 79, one of 65
          {1, 300, 2, 1, 8, 3, 4, 128, 8},     // 9 tiles of 2 < m, tail 12
          {1, 77, 1, 1, 8, 2, 16, 16, 2},      // p 16, tiles of 1, tail 13
          {1, 100003, 2, 1, 64, 3, 4, 2048, 128},  // the default budgets, tail 3
          {1, 70001, 1, 1, 8, 8, 2, 16, 4}};       // L 8 (the CUDA maximum), tail 113
}

Geometry geometry(const Shape& s) {
  Geometry g;
  std::string err;
  EXPECT_TRUE(make_geometry(s.cfg(), s.N, &g, &err)) << err;
  return g;
}

class CudaRagged : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override { SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaRagged, StagesMatchCpu) {
  const Shape s = GetParam();
  const Geometry g = geometry(s);
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    const Inputs in = random_inputs(s, dt, 31);
    for (const at::Tensor& x : {in.q, in.k}) {
      auto [pyr_c, sc_c] = ops::pool_score(x, s.L, s.p, true, true);
      poison_allocator(4 * x.nbytes() + (1 << 20));
      auto [pyr_g, sc_g] = ops::pool_score(to_cuda(x), s.L, s.p, true, true);
      EXPECT_TRUE(at::allclose(sc_g.cpu(), sc_c, 1e-5, 1e-30)) << s.name() << " scores " << dt;
      if (g.P1 > 0) {
        const double eps = dt == at::kFloat ? 2e-6 : 8e-3;
        EXPECT_LE(rel_err(pyr_g.cpu(), pyr_c), eps) << s.name() << " pyramid " << dt;
      }
    }
    const at::Tensor sq = std::get<1>(ops::pool_score(to_cuda(in.q), s.L, s.p, false, true));
    const at::Tensor sk = std::get<1>(ops::pool_score(to_cuda(in.k), s.L, s.p, false, true));
    for (Selection rule : {Selection::Stratified, Selection::Causal}) {
      Config cfg = s.cfg();
      cfg.selection = rule;
      auto [slots_c, inv_c] = ops::select(sq.cpu(), sk.cpu(), cfg);
      poison_allocator(16 * inv_c.numel() + (1 << 20));
      auto [slots_g, inv_g] = ops::select(sq, sk, cfg);
      ASSERT_EQ(slots_c.size(2), g.S);
      EXPECT_TRUE(bitwise_equal(slots_g.cpu(), slots_c)) << s.name() << " " << selection_name(rule);
      EXPECT_TRUE(bitwise_equal(inv_g.cpu(), inv_c)) << s.name() << " " << selection_name(rule);
    }
    const Plan plan = lighthouse::plan(in.q, in.k, s.cfg());
    const at::Tensor slots = to_cuda(plan.slots), inverse = to_cuda(plan.inverse);
    const double tol = tolerance(dt);
    const at::Tensor ot = randn({s.B, s.H, g.S, s.D}, dt, 32);  // [B, H, S, D]
    const at::Tensor o_c = ops::scatter(ot.to(at::kDouble), plan.slots, plan.inverse, s.L, s.p);
    poison_allocator(2 * o_c.nbytes() + (1 << 20));
    EXPECT_LE(rel_err(ops::scatter(to_cuda(ot), slots, inverse, s.L, s.p).cpu(), o_c), tol)
        << s.name() << " scatter " << dt;
    const at::Tensor go = randn({s.B, s.N, s.H, s.D}, dt, 33);  // [B, N, H, D]
    const at::Tensor dot_c = ops::scatter_backward(go.to(at::kDouble), plan.slots, s.L, s.p);
    poison_allocator(2 * dot_c.nbytes() + (1 << 20));
    EXPECT_LE(rel_err(ops::scatter_backward(to_cuda(go), slots, s.L, s.p).cpu(), dot_c), tol)
        << s.name() << " scatter_backward " << dt;
    for (int64_t heads : {s.H, s.Hkv}) {
      const at::Tensor dx_c = ops::gather_backward(ot.to(at::kDouble), plan.inverse, s.L, s.p,
                                                   heads);
      poison_allocator(2 * dx_c.nbytes() + (1 << 20));
      const at::Tensor dx_g = ops::gather_backward(to_cuda(ot), inverse, s.L, s.p, heads);
      EXPECT_LE(rel_err(dx_g.cpu(), dx_c), tol) << s.name() << " gather_backward " << dt;
    }
  }
}

TEST_P(CudaRagged, AttentionMatchesCpuFloat64OnSamePlan) {
  const Shape s = GetParam();
  if (s.N > 5000) GTEST_SKIP() << "the float64 CPU reference of the inner SDPA is for short N";
  for (Selection rule : {Selection::Stratified, Selection::Causal}) {
    Config cfg = s.cfg();
    cfg.selection = rule;
    const Inputs in = random_inputs(s, at::kBFloat16, 34);
    const at::Tensor go = randn({s.B, s.N, s.H, s.D}, at::kBFloat16, 35);
    const Inputs gin{to_cuda(in.q), to_cuda(in.k), to_cuda(in.v)};
    const Plan plan = lighthouse::plan(gin.q, gin.k, cfg);
    const Plan plan_c{plan.slots.cpu(), plan.inverse.cpu()};
    poison_allocator(4 * gin.q.nbytes() + (1 << 20));
    const FwdBwd got = run_with_plan(gin, plan, cfg, to_cuda(go));
    const Inputs din{in.q.to(at::kDouble), in.k.to(at::kDouble), in.v.to(at::kDouble)};
    const FwdBwd want = run_with_plan(din, plan_c, cfg, go.to(at::kDouble));
    const double tol = tolerance(at::kBFloat16);
    EXPECT_LE(rel_err(got.o.cpu(), want.o), tol) << s.name() << " o";
    EXPECT_LE(rel_err(got.dq.cpu(), want.dq), tol) << s.name() << " dq";
    EXPECT_LE(rel_err(got.dk.cpu(), want.dk), tol) << s.name() << " dk";
    EXPECT_LE(rel_err(got.dv.cpu(), want.dv), tol) << s.name() << " dv";
  }
}

// Storage after position N is never read on CUDA either: views of a NaN-tailed buffer give
// bitwise the outputs of fresh copies (norm and dilated scorers).
TEST_P(CudaRagged, NeverReadsPastTheSequence) {
  Shape s = GetParam();
  s.B = 1;
  const Inputs in = random_inputs(s, at::kBFloat16, 36);
  auto in_nan_buffer = [&](const at::Tensor& x) {
    at::Tensor buf = at::full({1, s.N + 9, x.size(2), s.D}, std::nan(""), x.options());
    buf.narrow(1, 0, s.N).copy_(x);
    return to_cuda(buf).narrow(1, 0, s.N);
  };
  for (Scorer scorer : {Scorer::Norm, Scorer::Dilated}) {
    Config cfg = s.cfg();
    cfg.scorer = scorer;
    cfg.dilation = 3;
    const at::Tensor a = attention(to_cuda(in.q), to_cuda(in.k), to_cuda(in.v), cfg);
    const at::Tensor b =
        attention(in_nan_buffer(in.q), in_nan_buffer(in.k), in_nan_buffer(in.v), cfg);
    EXPECT_TRUE(a.isfinite().all().item<bool>()) << s.name();
    EXPECT_LE(rel_err(b.cpu(), a.cpu()), 1e-6) << s.name() << " " << scorer_name(scorer);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaRagged, ::testing::ValuesIn(ragged_gpu_shapes()),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

// The dilated scores with δ not dividing N (zero padding at the end of each sub-sequence) equal
// the float64 CPU reference.
TEST(CudaRaggedDilated, ScoresMatchCpu) {
  SKIP_WITHOUT_CUDA();
  for (int64_t N : {1, 7, 1000, 4099}) {
    for (int64_t delta : {3, 4, 5}) {
      const Shape s{1, N, 4, 2, 64, 3, 4, 16, 8};
      const Inputs in = random_inputs(s, at::kFloat, 37 + N + delta);
      auto [gq, gk] = ops::dilated_score(to_cuda(in.q), to_cuda(in.k), to_cuda(in.v), s.L, s.p,
                                         delta);
      auto [cq, ck] = ops::dilated_score(in.q.to(at::kDouble), in.k.to(at::kDouble),
                                         in.v.to(at::kDouble), s.L, s.p, delta);
      EXPECT_LE(rel_err(gq.cpu(), cq), 1e-3) << "N " << N << " delta " << delta;
      EXPECT_LE(rel_err(gk.cpu(), ck), 1e-3) << "N " << N << " delta " << delta;
    }
  }
}

}  // namespace
}  // namespace lighthouse::test
