// The dilated scorer on CUDA (stock SDPA on strided views) against the CPU reference: scores
// within the dtype's tolerance of float64, the identical plan from identical fp32 scores, and
// the whole op with scorer = dilated against the CPU float64 reference on the GPU's plan.
#include <ATen/ATen.h>

#include "gpu/gpu_common.h"
#include "ops/stages.h"
#include "support/common.h"

namespace lighthouse::test {
namespace {

struct Case {
  Shape s;
  int64_t delta;
};

std::vector<Case> cases() {
  //        B     N  H Hkv   D  L  p    k   m    δ
  return {{{2, 1024, 4, 2, 64, 3, 4, 64, 16}, 4},    // GQA 2, B 2
          {{1, 2048, 2, 2, 128, 3, 2, 64, 16}, 2},   // D 128
          {{1, 4096, 4, 1, 64, 4, 4, 32, 8}, 8},     // MQA, L 4
          {{1, 768, 3, 3, 32, 2, 2, 24, 8}, 3},      // δ 3, odd H
          {{1, 16384, 2, 1, 64, 3, 4, 256, 128}, 4}};  // C 512
}

Config dilated_cfg(const Case& c) {
  Config cfg = c.s.cfg();
  cfg.scorer = Scorer::Dilated;
  cfg.dilation = c.delta;
  return cfg;
}

Inputs on_cuda(const Inputs& in) { return {to_cuda(in.q), to_cuda(in.k), to_cuda(in.v)}; }
Inputs in_double(const Inputs& in) {
  return {in.q.to(at::kDouble), in.k.to(at::kDouble), in.v.to(at::kDouble)};
}

class CudaDilated : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaDilated, ScoresMatchCpuFloat64) {
  const Case c = GetParam();
  const Shape& s = c.s;
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
    const Inputs in = random_inputs(s, dt, 41);
    const Inputs din = in_double(in), gin = on_cuda(in);
    auto [cq, ck] = ops::dilated_score(din.q, din.k, din.v, s.L, s.p, c.delta);  // [B, H, P]
    poison_allocator(4 * gin.q.nbytes());
    auto [gq, gk] = ops::dilated_score(gin.q, gin.k, gin.v, s.L, s.p, c.delta);
    ASSERT_TRUE(gq.is_cuda() && gq.scalar_type() == at::kFloat);
    EXPECT_LE(rel_err(gq.cpu(), cq), tolerance(dt)) << s.name() << " " << dt << " sq";
    EXPECT_LE(rel_err(gk.cpu(), ck), tolerance(dt)) << s.name() << " " << dt << " sk";
  }
}

TEST_P(CudaDilated, IdenticalPlanFromIdenticalScores) {
  const Case c = GetParam();
  const Inputs in = random_inputs(c.s, at::kFloat, 42);
  auto [sq, sk] = ops::dilated_score(in.q, in.k, in.v, c.s.L, c.s.p, c.delta);  // CPU fp32
  auto [slots_c, inv_c] = ops::select(sq, sk, c.s.cfg());
  poison_allocator(8 * inv_c.numel() * 2);
  auto [slots_g, inv_g] = ops::select(to_cuda(sq), to_cuda(sk), c.s.cfg());
  EXPECT_TRUE(bitwise_equal(slots_g.cpu(), slots_c)) << c.s.name();
  EXPECT_TRUE(bitwise_equal(inv_g.cpu(), inv_c)) << c.s.name();
}

TEST_P(CudaDilated, OpMatchesCpuFloat64OnSamePlan) {
  const Case c = GetParam();
  const Config cfg = dilated_cfg(c);
  const Inputs in = random_inputs(c.s, at::kBFloat16, 43);
  const at::Tensor go = randn({c.s.B, c.s.N, c.s.H, c.s.D}, at::kBFloat16, 44);  // [B, N, H, D]
  const Inputs gin = on_cuda(in);
  const Plan plan = lighthouse::plan(gin.q, gin.k, gin.v, cfg);
  expect_valid_table(Plan{plan.slots.cpu(), plan.inverse.cpu()}, c.s.S(), c.s.P());
  poison_allocator(2 * gin.q.nbytes());
  const FwdBwd gpu = run_attention(gin, cfg, to_cuda(go));
  const FwdBwd ref = run_with_plan(in_double(in), Plan{plan.slots.cpu(), plan.inverse.cpu()}, cfg,
                                   go.to(at::kDouble));
  const double tol = tolerance(at::kBFloat16);
  EXPECT_LE(rel_err(gpu.o.cpu(), ref.o), tol) << "o";
  EXPECT_LE(rel_err(gpu.dq.cpu(), ref.dq), tol) << "dq";
  EXPECT_LE(rel_err(gpu.dk.cpu(), ref.dk), tol) << "dk";
  EXPECT_LE(rel_err(gpu.dv.cpu(), ref.dv), tol) << "dv";
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaDilated, ::testing::ValuesIn(cases()),
                         [](const auto& info) {
                           return std::to_string(info.index) + "_d" +
                                  std::to_string(info.param.delta);
                         });

}  // namespace
}  // namespace lighthouse::test
