// The CUDA stage kernels against the CPU reference, stage by stage, on fresh random inputs:
// scores to fp32 rounding, pyramid to one rounding of the dtype, identical slot tables from
// identical fp32 scores (ties, NaN, signed zeros and infinities included), gather bit-exact,
// scatter and both backward stages against float64, and bitwise run-to-run determinism.
#include <ATen/ATen.h>

#include "gpu/gpu_common.h"
#include "ops/stages.h"
#include "support/common.h"

namespace lighthouse::test {
namespace {

using ops::gather;
using ops::gather_backward;
using ops::gather_backward_qkv;
using ops::pool_score;
using ops::pool_score_qkv;
using ops::scatter;
using ops::scatter_backward;
using ops::select;

class CudaStages : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override { SKIP_WITHOUT_CUDA(); }
};

const at::ScalarType kDtypes[] = {at::kFloat, at::kHalf, at::kBFloat16};

TEST_P(CudaStages, ScoresAndPyramidMatchCpu) {
  const Shape s = GetParam();
  for (at::ScalarType dt : kDtypes) {
    const Inputs in = random_inputs(s, dt, 11);
    for (const at::Tensor& x : {in.q, in.k}) {
      auto [pyr_c, sc_c] = pool_score(x, s.L, s.p, true, true);  // [B, P1, Hx, D], [B, Hx, P]
      poison_allocator(4 * x.nbytes());
      auto [pyr_g, sc_g] = pool_score(to_cuda(x), s.L, s.p, true, true);
      // Scores: the same fp32 norms summed in another order.
      EXPECT_TRUE(at::allclose(sc_g.cpu(), sc_c, 1e-5, 1e-30)) << s.name() << " " << dt;
      // Pyramid: fp32 means in another order, then one rounding to the dtype.
      const double eps = dt == at::kFloat ? 2e-6 : (dt == at::kHalf ? 1e-3 : 8e-3);
      EXPECT_LE(rel_err(pyr_g.cpu(), pyr_c), eps) << s.name() << " " << dt;
      auto [none, sc_only] = pool_score(to_cuda(x), s.L, s.p, false, true);
      EXPECT_TRUE(bitwise_equal(sc_only.cpu(), sc_g.cpu())) << "scores alone differ";
    }
  }
}

// Scores with exact ties, NaN, +-0 and +-inf, besides ordinary random values.
at::Tensor adversarial_scores(int64_t B, int64_t H, int64_t P, int variant, uint64_t seed) {
  at::Tensor r = randn({B, H, P}, at::kFloat, seed);  // [B, H, P]
  if (variant == 0) return r.abs();
  if (variant == 1) return at::zeros_like(r).fill_(0.5f);  // everything ties
  at::Tensor sc = at::round(r * 2.0f) / 2.0f;  // few distinct values: many ties
  at::Tensor u = randn({B, H, P}, at::kFloat, seed + 1);
  sc = at::where(u > 2.0f, at::full_like(sc, std::numeric_limits<float>::quiet_NaN()), sc);
  sc = at::where(u < -2.2f, at::full_like(sc, std::numeric_limits<float>::infinity()), sc);
  sc = at::where((u > 1.0f) & (u < 1.1f), at::full_like(sc, -std::numeric_limits<float>::infinity()), sc);
  sc = at::where((u > 0.0f) & (u < 0.2f), at::full_like(sc, -0.0f), sc);
  return sc;
}

TEST_P(CudaStages, SelectMatchesCpuOnIdenticalScores) {
  const Shape s = GetParam();
  for (int variant = 0; variant < 3; ++variant) {
    const at::Tensor sq = adversarial_scores(s.B, s.H, s.P(), variant, 100 + variant);   // [B, H, P]
    const at::Tensor sk = adversarial_scores(s.B, s.Hkv, s.P(), variant, 200 + variant); // [B, Hkv, P]
    auto [slots_c, inv_c] = select(sq, sk, s.cfg());
    poison_allocator(8 * inv_c.numel() * 2);
    auto [slots_g, inv_g] = select(to_cuda(sq), to_cuda(sk), s.cfg());
    EXPECT_TRUE(bitwise_equal(slots_g.cpu(), slots_c)) << s.name() << " variant " << variant;
    EXPECT_TRUE(bitwise_equal(inv_g.cpu(), inv_c)) << s.name() << " variant " << variant;
  }
}

TEST_P(CudaStages, DataStagesMatchCpu) {
  const Shape s = GetParam();
  for (at::ScalarType dt : kDtypes) {
    const Inputs in = random_inputs(s, dt, 21);
    const Plan plan = lighthouse::plan(in.q, in.k, s.cfg());
    const at::Tensor slots = to_cuda(plan.slots), inverse = to_cuda(plan.inverse);
    const double tol = tolerance(dt);
    // Gather: a copy, bit-exact on the same pyramid.
    const at::Tensor pyr_k = std::get<0>(pool_score(in.k, s.L, s.p, true, false));  // [B, P1, Hkv, D]
    const at::Tensor kt_c = gather(in.k, pyr_k, plan.slots, plan.inverse, s.L, s.p);
    poison_allocator(2 * kt_c.nbytes());
    const at::Tensor kt_g = gather(to_cuda(in.k), to_cuda(pyr_k), slots, inverse, s.L, s.p);
    EXPECT_TRUE(bitwise_equal(kt_g.cpu(), kt_c)) << s.name() << " gather " << dt;
    // Scatter and the two backward stages, against float64.
    const at::Tensor ot = randn({s.B, s.H, s.S(), s.D}, dt, 31);  // [B, H, S, D]
    const at::Tensor o_c = scatter(ot.to(at::kDouble), plan.slots, plan.inverse, s.L, s.p);
    poison_allocator(2 * o_c.nbytes());
    EXPECT_LE(rel_err(scatter(to_cuda(ot), slots, inverse, s.L, s.p).cpu(), o_c), tol)
        << s.name() << " scatter " << dt;
    const at::Tensor go = randn({s.B, s.N, s.H, s.D}, dt, 41);  // [B, N, H, D]
    const at::Tensor dot_c = scatter_backward(go.to(at::kDouble), plan.slots, s.L, s.p);
    poison_allocator(2 * dot_c.nbytes());
    EXPECT_LE(rel_err(scatter_backward(to_cuda(go), slots, s.L, s.p).cpu(), dot_c), tol)
        << s.name() << " scatter_backward " << dt;
    const at::Tensor gt = randn({s.B, s.H, s.S(), s.D}, dt, 51);  // [B, H, S, D]
    for (int64_t heads : {s.H, s.Hkv}) {
      const at::Tensor dx_c = gather_backward(gt.to(at::kDouble), plan.inverse, s.L, s.p, heads);
      poison_allocator(2 * dx_c.nbytes());
      EXPECT_LE(rel_err(gather_backward(to_cuda(gt), inverse, s.L, s.p, heads).cpu(), dx_c), tol)
          << s.name() << " gather_backward (kv_heads " << heads << ") " << dt;
    }
  }
}

// The fused backward of q, k and v (one launch) against three single launches, bitwise, and
// v's against float64 on the CPU (GQA shapes sum over the group, MHA ones take the H == Hx path).
TEST_P(CudaStages, FusedGatherBackwardEqualsThreeSingleOnes) {
  const Shape s = GetParam();
  for (at::ScalarType dt : kDtypes) {
    const Inputs in = random_inputs(s, dt, 23);
    const Plan plan = lighthouse::plan(in.q, in.k, s.cfg());
    const at::Tensor inverse = to_cuda(plan.inverse);
    std::vector<at::Tensor> g;  // q's, k's, v's gradients [B, H, S, D]
    for (uint64_t seed : {53, 54, 55})
      g.push_back(to_cuda(randn({s.B, s.H, s.S(), s.D}, dt, seed)));
    poison_allocator(8 * g[0].nbytes());
    auto [dq, dk, dv] = gather_backward_qkv(g[0], g[1], g[2], inverse, s.L, s.p, s.Hkv);
    ASSERT_EQ(dq.sizes(), (at::IntArrayRef{s.B, s.N, s.H, s.D}));
    ASSERT_EQ(dk.sizes(), (at::IntArrayRef{s.B, s.N, s.Hkv, s.D}));
    EXPECT_TRUE(bitwise_equal(dq.cpu(), gather_backward(g[0], inverse, s.L, s.p, s.H).cpu()))
        << s.name() << " dq " << dt;
    EXPECT_TRUE(bitwise_equal(dk.cpu(), gather_backward(g[1], inverse, s.L, s.p, s.Hkv).cpu()))
        << s.name() << " dk " << dt;
    EXPECT_TRUE(bitwise_equal(dv.cpu(), gather_backward(g[2], inverse, s.L, s.p, s.Hkv).cpu()))
        << s.name() << " dv " << dt;
    const at::Tensor dv_c =
        gather_backward(g[2].cpu().to(at::kDouble), plan.inverse, s.L, s.p, s.Hkv);
    EXPECT_LE(rel_err(dv.cpu(), dv_c), tolerance(dt)) << s.name() << " dv vs float64 " << dt;
  }
}

// q, k and v pooled and scored in one launch against three single launches, bitwise (GQA
// shapes: q's part has more heads than k's and v's; ragged shapes: the tail's norms too).
TEST_P(CudaStages, FusedPoolScoreEqualsThreeSingleOnes) {
  Shape ragged = GetParam();
  ragged.N += 3;  // a tail of positions no coarsest window covers
  for (const Shape& s : {GetParam(), ragged}) {
    for (at::ScalarType dt : kDtypes) {
      const Inputs in = random_inputs(s, dt, 24);
      const at::Tensor q = to_cuda(in.q), k = to_cuda(in.k), v = to_cuda(in.v);
      for (bool scores : {true, false}) {
        poison_allocator(8 * q.nbytes());
        auto [pq, pk, pv, sq, sk] = pool_score_qkv(q, k, v, s.L, s.p, scores);
        auto [pq1, sq1] = pool_score(q, s.L, s.p, true, scores);
        auto [pk1, sk1] = pool_score(k, s.L, s.p, true, scores);
        const at::Tensor pv1 = std::get<0>(pool_score(v, s.L, s.p, true, false));
        const at::Tensor got[] = {pq, pk, pv, sq, sk}, want[] = {pq1, pk1, pv1, sq1, sk1};
        for (int i = 0; i < 5; ++i)
          EXPECT_TRUE(bitwise_equal(got[i].cpu(), want[i].cpu()))
              << s.name() << " output " << i << " " << dt << ", scores " << scores;
      }
    }
  }
}

TEST_P(CudaStages, BitwiseDeterministic) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kBFloat16, 61);
  const at::Tensor q = to_cuda(in.q), k = to_cuda(in.k);
  auto run = [&] {
    auto [pyr_q, sq] = pool_score(q, s.L, s.p, true, true);
    auto [pyr_k, sk] = pool_score(k, s.L, s.p, true, true);
    auto [slots, inverse] = select(sq, sk, s.cfg());
    const at::Tensor qt = gather(q, pyr_q, slots, inverse, s.L, s.p);    // [B, H, S, D]
    const at::Tensor o = scatter(qt, slots, inverse, s.L, s.p);          // [B, N, H, D]
    const at::Tensor dot = scatter_backward(o, slots, s.L, s.p);         // [B, H, S, D]
    const at::Tensor dk = gather_backward(dot, inverse, s.L, s.p, s.Hkv);  // [B, N, Hkv, D]
    return std::vector<at::Tensor>{pyr_q.cpu(), sq.cpu(), pyr_k.cpu(), slots.cpu(),
                                   inverse.cpu(), qt.cpu(), o.cpu(), dot.cpu(), dk.cpu()};
  };
  const auto a = run();
  const auto b = run();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(bitwise_equal(a[i], b[i])) << s.name() << " output " << i << " differs";
}

// The op tests' shapes, plus deeper pyramids (the CUDA scatter is compiled per L) and one
// tile of 32768 coarsest candidates (the select loops in chunks).
std::vector<Shape> gpu_shapes() {
  std::vector<Shape> out = property_shapes();
  out.push_back({1, 8192, 2, 1, 16, 6, 2, 16, 8});  // L 6, S 416
  out.push_back({1, 16384, 2, 2, 8, 8, 2, 8, 4});   // L 8 (largest on CUDA), S 240
  out.push_back({1, 65536, 1, 1, 8, 2, 2, 4, 4});   // T 1, C 32768
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaStages, ::testing::ValuesIn(gpu_shapes()),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

// Long sequences: grids and int64 offsets at N = 512K and beyond 1M positions.
TEST(CudaStagesLarge, SelectAndScoresAtLongN) {
  SKIP_WITHOUT_CUDA();
  for (const Shape& s : {Shape{1, 524288, 8, 8, 128, 3, 4, 2048, 128},
                         Shape{1, 1048576, 2, 1, 64, 3, 4, 4096, 128},
                         Shape{2, 262144, 2, 2, 64, 4, 8, 256, 128}}) {
    auto opts = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
    const at::Tensor q = at::randn({s.B, s.N, s.H, s.D}, opts);    // [B, N, H, D]
    const at::Tensor k = at::randn({s.B, s.N, s.Hkv, s.D}, opts);  // [B, N, Hkv, D]
    const at::Tensor sq_g = std::get<1>(pool_score(q, s.L, s.p, false, true));
    const at::Tensor sk_g = std::get<1>(pool_score(k, s.L, s.p, false, true));
    const at::Tensor sq_c = std::get<1>(pool_score(q.cpu(), s.L, s.p, false, true));
    EXPECT_TRUE(at::allclose(sq_g.cpu(), sq_c, 1e-5, 1e-30)) << s.name();
    auto [slots_c, inv_c] = select(sq_g.cpu(), sk_g.cpu(), s.cfg());
    auto [slots_g, inv_g] = select(sq_g, sk_g, s.cfg());
    EXPECT_TRUE(bitwise_equal(slots_g.cpu(), slots_c)) << s.name();
    EXPECT_TRUE(bitwise_equal(inv_g.cpu(), inv_c)) << s.name();
  }
}

}  // namespace
}  // namespace lighthouse::test
