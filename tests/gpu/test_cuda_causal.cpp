// The causal selection (SPEC.md §12) on CUDA: the kernel's plan bitwise equals the CPU plan
// from identical fp32 scores (ties, NaN, +-0 and +-inf included, up to N = 512K; with and
// without a context-parallel halo, SPEC.md §10), the op with
// selection = causal matches the float64 CPU reference on the same plan, and the defining
// property holds on the device: outputs at positions <= t are bitwise unchanged when the
// inputs after t are redrawn, with the plan recomputed.
#include <ATen/ATen.h>

#include "gpu/gpu_common.h"
#include "ops/stages.h"
#include "support/common.h"

namespace lighthouse::test {
namespace {

Config causal(const Shape& s) {
  Config c = s.cfg();
  c.selection = Selection::Causal;
  return c;
}

// Scores with exact ties, NaN, +-0 and +-inf (variant 2), all ties (1) or plain values (0).
at::Tensor scores(int64_t B, int64_t H, int64_t P, int variant, uint64_t seed) {
  at::Tensor r = randn({B, H, P}, at::kFloat, seed).abs();  // [B, H, P]
  if (variant == 0) return r;
  if (variant == 1) return at::zeros_like(r).fill_(0.5f);
  at::Tensor sc = at::round(r * 2.0f) / 2.0f;
  const at::Tensor u = randn({B, H, P}, at::kFloat, seed + 1);
  sc = at::where(u > 2.0f, at::full_like(sc, std::numeric_limits<float>::quiet_NaN()), sc);
  sc = at::where(u < -2.2f, at::full_like(sc, std::numeric_limits<float>::infinity()), sc);
  sc = at::where((u > 1.0f) & (u < 1.1f),
                 at::full_like(sc, -std::numeric_limits<float>::infinity()), sc);
  sc = at::where((u > 0.0f) & (u < 0.2f), at::full_like(sc, -0.0f), sc);
  return sc;
}

std::vector<Shape> shapes() {
  std::vector<Shape> out = property_shapes();
  out.push_back({1, 8192, 2, 1, 16, 6, 2, 16, 8});  // L 6
  out.push_back({1, 65536, 1, 1, 8, 2, 2, 4, 4});   // T 1, C 32768 (one thread decides them)
  return out;
}

class CudaCausal : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override { SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaCausal, PlanMatchesCpuOnIdenticalScores) {
  const Shape s = GetParam();
  for (int variant = 0; variant < 3; ++variant) {
    const at::Tensor sq = scores(s.B, s.H, s.P(), variant, 300 + variant);    // [B, H, P]
    const at::Tensor sk = scores(s.B, s.Hkv, s.P(), variant, 400 + variant);  // [B, Hkv, P]
    auto [slots_c, inv_c] = ops::select(sq, sk, causal(s));
    poison_allocator(8 * inv_c.numel() * 2);
    auto [slots_g, inv_g] = ops::select(to_cuda(sq), to_cuda(sk), causal(s));
    EXPECT_TRUE(bitwise_equal(slots_g.cpu(), slots_c)) << s.name() << " variant " << variant;
    EXPECT_TRUE(bitwise_equal(inv_g.cpu(), inv_c)) << s.name() << " variant " << variant;
    // With a context-parallel halo (SPEC.md §10): the previous chunk's last scores per level.
    const at::Tensor pq = scores(s.B, s.H, s.L - 1, variant, 500 + variant);    // [B, H, L-1]
    const at::Tensor pk = scores(s.B, s.Hkv, s.L - 1, variant, 600 + variant);  // [B, Hkv, L-1]
    auto [halo_slots_c, halo_inv_c] = ops::select(sq, sk, causal(s), pq, pk);
    auto [halo_slots_g, halo_inv_g] =
        ops::select(to_cuda(sq), to_cuda(sk), causal(s), to_cuda(pq), to_cuda(pk));
    EXPECT_TRUE(bitwise_equal(halo_slots_g.cpu(), halo_slots_c))
        << s.name() << " variant " << variant << " with a halo";
    EXPECT_TRUE(bitwise_equal(halo_inv_g.cpu(), halo_inv_c))
        << s.name() << " variant " << variant << " with a halo";
  }
}

TEST_P(CudaCausal, OpMatchesCpuFloat64OnSamePlan) {
  const Shape s = GetParam();
  if (s.N > 16384) GTEST_SKIP() << "covered by the plan test";
  const Inputs in = random_inputs(s, at::kBFloat16, 1235);
  const Inputs gin{to_cuda(in.q), to_cuda(in.k), to_cuda(in.v)};
  const at::Tensor go = randn({s.B, s.N, s.H, s.D}, at::kBFloat16, 98);  // [B, N, H, D]
  const Plan plan = lighthouse::plan(gin.q, gin.k, causal(s));
  // The CPU rule on the GPU's scores gives the same plan.
  const at::Tensor sq = std::get<1>(ops::pool_score(gin.q, s.L, s.p, false, true)).cpu();
  const at::Tensor sk = std::get<1>(ops::pool_score(gin.k, s.L, s.p, false, true)).cpu();
  auto [slots_c, inv_c] = ops::select(sq, sk, causal(s));
  EXPECT_TRUE(bitwise_equal(plan.slots.cpu(), slots_c));
  const FwdBwd gpu = run_with_plan(gin, plan, causal(s), to_cuda(go));
  const Inputs d{in.q.to(at::kDouble), in.k.to(at::kDouble), in.v.to(at::kDouble)};
  const FwdBwd ref =
      run_with_plan(d, Plan{plan.slots.cpu(), plan.inverse.cpu()}, s.cfg(), go.to(at::kDouble));
  const double tol = tolerance(at::kBFloat16);
  EXPECT_LE(rel_err(gpu.o.cpu(), ref.o), tol) << "o";
  EXPECT_LE(rel_err(gpu.dq.cpu(), ref.dq), tol) << "dq";
  EXPECT_LE(rel_err(gpu.dk.cpu(), ref.dk), tol) << "dk";
  EXPECT_LE(rel_err(gpu.dv.cpu(), ref.dv), tol) << "dv";
  const at::Tensor o = attention(gin.q, gin.k, gin.v, causal(s));
  EXPECT_TRUE(bitwise_equal(o.cpu(), gpu.o.cpu())) << "attention() differs from its own plan";
}

// The defining property on the device (fp32, plan recomputed, default SDPA backend).
TEST_P(CudaCausal, OutputsBeforeCutUnchanged) {
  const Shape s = GetParam();
  if (s.N > 16384) GTEST_SKIP() << "covered by the plan test";
  const Inputs in = random_inputs(s, at::kFloat, 1236);
  const Inputs gin{to_cuda(in.q), to_cuda(in.k), to_cuda(in.v)};
  const at::Tensor o = attention(gin.q, gin.k, gin.v, causal(s)).cpu();  // [B, N, H, D]
  const int64_t T = s.k / s.m, span = s.N / T;
  for (int64_t t : {span / 3, span - 1, span, s.N / 2 + 1, s.N - 2}) {
    if (t + 1 >= s.N) continue;  // one tile (T = 1): no position after the cut
    const Inputs fresh = random_inputs(s, at::kFloat, 2000 + t);
    Inputs moved{gin.q.clone(), gin.k.clone(), gin.v.clone()};
    const int64_t n = s.N - t - 1;
    moved.q.narrow(1, t + 1, n).copy_(to_cuda(fresh.q.narrow(1, t + 1, n)));
    moved.k.narrow(1, t + 1, n).copy_(to_cuda(fresh.k.narrow(1, t + 1, n)));
    moved.v.narrow(1, t + 1, n).copy_(to_cuda(fresh.v.narrow(1, t + 1, n)));
    const at::Tensor o2 = attention(moved.q, moved.k, moved.v, causal(s)).cpu();
    EXPECT_TRUE(bitwise_equal(o2.narrow(1, 0, t + 1), o.narrow(1, 0, t + 1))) << "t = " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaCausal, ::testing::ValuesIn(shapes()),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

// Long sequences: the replica's and the benchmark's shapes.
TEST(CudaCausalLarge, PlanMatchesCpuAtLongN) {
  SKIP_WITHOUT_CUDA();
  for (const Shape& s :
       {Shape{1, 524288, 8, 8, 128, 3, 4, 2048, 128}, Shape{1, 65536, 8, 4, 64, 3, 4, 2048, 128},
        Shape{2, 262144, 2, 2, 64, 4, 8, 256, 128}}) {
    auto opts = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
    const at::Tensor q = at::randn({s.B, s.N, s.H, s.D}, opts);    // [B, N, H, D]
    const at::Tensor k = at::randn({s.B, s.N, s.Hkv, s.D}, opts);  // [B, N, Hkv, D]
    const at::Tensor sq = std::get<1>(ops::pool_score(q, s.L, s.p, false, true));
    const at::Tensor sk = std::get<1>(ops::pool_score(k, s.L, s.p, false, true));
    auto [slots_c, inv_c] = ops::select(sq.cpu(), sk.cpu(), causal(s));
    auto [slots_g, inv_g] = ops::select(sq, sk, causal(s));
    EXPECT_TRUE(bitwise_equal(slots_g.cpu(), slots_c)) << s.name();
    EXPECT_TRUE(bitwise_equal(inv_g.cpu(), inv_c)) << s.name();
  }
}

}  // namespace
}  // namespace lighthouse::test
