// Agreement of the op with the naive oracle (SPEC.md §8.5): identical scores and slot tables,
// forward and all three gradients within 1e-10 relative in float64.
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "ops/stages.h"
#include "support/common.h"
#include "support/oracle.h"

namespace lighthouse::test {
namespace {

constexpr double kTol = 1e-10;

class Oracle : public ::testing::TestWithParam<Shape> {};

oracle::Selection oracle_plan(const Inputs& in, const Shape& s) {
  return oracle::plan(in.q, in.k, s.L, s.p, s.k, s.m);
}

TEST_P(Oracle, ScoresAndPyramidMatch) {
  const Shape s = GetParam();
  for (at::ScalarType dt : {at::kDouble, at::kFloat}) {
    const Inputs in = random_inputs(s, dt, 11);
    for (const at::Tensor& x : {in.q, in.k}) {
      auto [pyr, score] = ops::pool_score(x, s.L, s.p, true, true);  // [B, P1, Hx, D], [B, Hx, P]
      EXPECT_TRUE(bitwise_equal(score, oracle::scores(x, s.L, s.p))) << at::toString(dt);
      const at::Tensor want =
          oracle::pyramid(x.to(at::kDouble), s.L, s.p).narrow(1, s.N, pyr.size(1));
      EXPECT_LE(rel_err(pyr, want), dt == at::kDouble ? 1e-14 : 1e-6) << at::toString(dt);
    }
  }
}

TEST_P(Oracle, SlotTablesIdentical) {
  const Shape s = GetParam();
  for (at::ScalarType dt : {at::kDouble, at::kFloat, at::kBFloat16}) {
    const Inputs in = random_inputs(s, dt, 12);
    const Plan got = plan(in.q, in.k, s.cfg());
    const oracle::Selection want = oracle_plan(in, s);
    ASSERT_EQ(got.slots.sizes(), want.slots.sizes()) << at::toString(dt);
    EXPECT_TRUE(at::equal(got.slots, want.slots)) << at::toString(dt);
    EXPECT_TRUE(at::equal(got.inverse, want.inverse)) << at::toString(dt);
  }
}

// Inputs drawn from {-2, -1, 1, 2}: squared norms are small integers, so equal scores are
// everywhere and the tie rule (smaller index wins) decides most of the selection.
TEST_P(Oracle, TieRuleMatches) {
  const Shape s = GetParam();
  auto ties = [&](int64_t heads, uint64_t seed) {
    at::Tensor u = randn({s.B, s.N, heads, s.D}, at::kDouble, seed);  // [B, N, Hx, D]
    return at::where(u.abs() > 0.6745, u.sign() * 2, u.sign());
  };
  const at::Tensor q = ties(s.H, 13), k = ties(s.Hkv, 14);
  const Plan got = plan(q, k, s.cfg());
  const oracle::Selection want = oracle::plan(q, k, s.L, s.p, s.k, s.m);
  EXPECT_TRUE(at::equal(got.slots, want.slots));
  EXPECT_TRUE(at::equal(got.inverse, want.inverse));
  // The inputs really tie: fewer distinct level-0 scores than positions.
  const at::Tensor sq = oracle::scores(q, s.L, s.p).narrow(2, 0, s.N);
  EXPECT_LT(std::get<0>(at::_unique(sq)).numel(), s.N);
}

TEST_P(Oracle, ForwardAndGradientsFloat64) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 15);
  const at::Tensor grad_out = randn({s.B, s.N, s.H, s.D}, at::kDouble, 16);  // [B, N, H, D]
  const FwdBwd got = run_attention(in, s.cfg(), grad_out);

  const oracle::Selection sel = oracle_plan(in, s);
  at::Tensor q = in.q.clone().requires_grad_(true);
  at::Tensor k = in.k.clone().requires_grad_(true);
  at::Tensor v = in.v.clone().requires_grad_(true);
  const at::Tensor o = oracle::attention(q, k, v, sel.slots, s.L, s.p);  // [B, N, H, D]
  const auto grads = torch::autograd::grad({o}, {q, k, v}, {grad_out});

  EXPECT_LE(rel_err(got.o, o), kTol);
  EXPECT_LE(rel_err(got.dq, grads[0]), kTol);
  EXPECT_LE(rel_err(got.dk, grads[1]), kTol);
  EXPECT_LE(rel_err(got.dv, grads[2]), kTol);
  // Position 0 only hears itself at level 0; later positions hear up to L entries.
  EXPECT_GT(o.abs().max().item<double>(), 0.1);
}

// float32 and bfloat16 inputs compute in float32: same plan as the oracle, outputs within the
// dtype's own error of the float64 oracle on the same (rounded) inputs.
TEST_P(Oracle, LowerPrecisionForward) {
  const Shape s = GetParam();
  for (auto [dt, tol] : {std::pair{at::kFloat, 1e-5}, std::pair{at::kBFloat16, 2e-2}}) {
    const Inputs in = random_inputs(s, dt, 17);
    const at::Tensor o = attention(in.q, in.k, in.v, s.cfg());
    EXPECT_EQ(o.scalar_type(), dt);
    const oracle::Selection sel = oracle_plan(in, s);
    const at::Tensor want = oracle::attention(in.q.to(at::kDouble), in.k.to(at::kDouble),
                                              in.v.to(at::kDouble), sel.slots, s.L, s.p);
    EXPECT_LE(rel_err(o, want), tol) << at::toString(dt);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Oracle, ::testing::ValuesIn(oracle_shapes()),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

}  // namespace
}  // namespace lighthouse::test
