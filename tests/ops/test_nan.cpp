// The NaN policy (docs/op.md): NaN inputs propagate, never raise. A NaN score ranks above
// every number in selection (ties among NaNs: smaller index), the plan stays a valid table of
// exactly S distinct entries, and NaN reaches the outputs that read it while heads (and KV
// groups) that never read it stay finite. No crash, no error, forward or backward.
#include <gtest/gtest.h>

#include <limits>

#include "support/common.h"
#include "support/oracle.h"

namespace lighthouse::test {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kT0 = 100;  // the position that gets a NaN

class NanPolicy : public ::testing::TestWithParam<Shape> {};

// Level-0 token t is emitted for head (b, h), hence every ancestor of t is selected.
bool token_refined(const Plan& pl, int64_t b, int64_t h, int64_t t) {
  return pl.inverse[b][h][t].item<int64_t>() >= 0;
}

bool finite(const at::Tensor& x) {
  return x.isfinite().all().item<bool>();
}
bool all_nan(const at::Tensor& x) {
  return x.isnan().all().item<bool>();
}

TEST_P(NanPolicy, NanInQuery) {
  const Shape s = GetParam();
  const Inputs clean = random_inputs(s, at::kDouble, 81);
  Inputs in{clean.q.clone(), clean.k, clean.v};
  const int64_t h0 = s.H - 1;
  in.q[0][kT0][h0][3] = kNan;
  const Plan pl = plan(in.q, in.k, s.cfg());
  expect_valid_table(pl, s.S(), s.P());
  EXPECT_TRUE(token_refined(pl, 0, h0, kT0));
  EXPECT_TRUE(at::equal(pl.slots, oracle::plan(in.q, in.k, s.L, s.p, s.k, s.m).slots));
  const Plan ref = plan(clean.q, clean.k, s.cfg());  // other heads do not see the NaN
  EXPECT_TRUE(at::equal(pl.slots.narrow(1, 0, h0), ref.slots.narrow(1, 0, h0)));

  const at::Tensor grad_out = randn({s.B, s.N, s.H, s.D}, at::kDouble, 82);
  const FwdBwd r = run_attention(in, s.cfg(), grad_out);
  const at::Tensor oh = r.o.select(2, h0);            // [B, N, D]
  EXPECT_TRUE(all_nan(oh[0][kT0]));                   // the query's own output
  EXPECT_TRUE(finite(oh.narrow(1, 0, kT0)));          // earlier positions never read it
  EXPECT_TRUE(finite(r.o.narrow(2, 0, h0)));          // nor do the other heads
  EXPECT_TRUE(finite(r.dk.narrow(2, 0, s.Hkv - 1)));  // KV groups other than h0's
  EXPECT_FALSE(finite(r.dq.select(2, h0)));
  EXPECT_TRUE(finite(r.dq.narrow(2, 0, h0)));
}

TEST_P(NanPolicy, NanInKey) {
  const Shape s = GetParam();
  const Inputs clean = random_inputs(s, at::kDouble, 83);
  Inputs in{clean.q, clean.k.clone(), clean.v};
  in.k[0][kT0][0][5] = kNan;  // KV head 0: query heads [0, group)
  const int64_t group = s.H / s.Hkv;
  const Plan pl = plan(in.q, in.k, s.cfg());
  expect_valid_table(pl, s.S(), s.P());
  EXPECT_TRUE(at::equal(pl.slots, oracle::plan(in.q, in.k, s.L, s.p, s.k, s.m).slots));
  for (int64_t h = 0; h < group; ++h) EXPECT_TRUE(token_refined(pl, 0, h, kT0)) << h;

  const FwdBwd r = run_attention(in, s.cfg(), randn({s.B, s.N, s.H, s.D}, at::kDouble, 84));
  const at::Tensor og = r.o.narrow(2, 0, group);  // [B, N, group, D]
  EXPECT_TRUE(all_nan(og[0][kT0]));
  EXPECT_TRUE(finite(og.narrow(1, 0, kT0)));  // masked scores are -inf before the softmax
  EXPECT_TRUE(finite(r.o.narrow(2, group, s.H - group)));
  EXPECT_TRUE(finite(r.dv.narrow(2, 1, s.Hkv - 1)));
  EXPECT_FALSE(finite(r.dk.select(2, 0)));
}

// v does not take part in the selection. NaN reaches the group's outputs; note that the
// inner SDPA multiplies masked (exactly zero) weights with values, so 0 * NaN may also reach
// slots before the NaN one, exactly as in dense SDPA.
TEST_P(NanPolicy, NanInValue) {
  const Shape s = GetParam();
  const Inputs clean = random_inputs(s, at::kDouble, 85);
  Inputs in{clean.q, clean.k, clean.v.clone()};
  in.v[0][kT0][s.Hkv - 1][0] = kNan;
  const int64_t group = s.H / s.Hkv;
  const Plan pl = plan(in.q, in.k, s.cfg());
  EXPECT_TRUE(at::equal(pl.slots, plan(clean.q, clean.k, s.cfg()).slots));
  const FwdBwd r = run_attention(in, s.cfg(), randn({s.B, s.N, s.H, s.D}, at::kDouble, 86));
  EXPECT_FALSE(finite(r.o.narrow(2, s.H - group, group)));
  EXPECT_TRUE(finite(r.o.narrow(2, 0, s.H - group)));
  EXPECT_TRUE(finite(r.dv.narrow(2, 0, s.Hkv - 1)));
}

// All scores NaN: every comparison is a tie, so the selection is the one of equal scores
// (smaller index wins), the table is valid and every output is NaN.
TEST_P(NanPolicy, AllNan) {
  const Shape s = GetParam();
  const Inputs clean = random_inputs(s, at::kFloat, 87);
  const Inputs in{at::full_like(clean.q, kNan), at::full_like(clean.k, kNan), clean.v};
  const Plan pl = plan(in.q, in.k, s.cfg());
  expect_valid_table(pl, s.S(), s.P());
  const Plan flat = plan(at::ones_like(clean.q), at::ones_like(clean.k), s.cfg());
  EXPECT_TRUE(at::equal(pl.slots, flat.slots));
  EXPECT_TRUE(at::equal(pl.inverse, flat.inverse));
  EXPECT_TRUE(all_nan(attention(in.q, in.k, in.v, s.cfg())));
}

// +inf is a number: it ranks above every finite score (and below NaN, as in the oracle).
TEST_P(NanPolicy, InfinityAndNanBothRefined) {
  const Shape s = GetParam();
  Inputs in = random_inputs(s, at::kFloat, 88);
  const int64_t t_inf = 40, t_nan = kT0;
  in.q[0][t_inf][0][0] = std::numeric_limits<float>::infinity();
  in.q[0][t_nan][0][0] = kNan;
  const Plan pl = plan(in.q, in.k, s.cfg());
  expect_valid_table(pl, s.S(), s.P());
  EXPECT_TRUE(token_refined(pl, 0, 0, t_inf));
  EXPECT_TRUE(token_refined(pl, 0, 0, t_nan));
  EXPECT_TRUE(at::equal(pl.slots, oracle::plan(in.q, in.k, s.L, s.p, s.k, s.m).slots));
}

INSTANTIATE_TEST_SUITE_P(Shapes, NanPolicy,
                         ::testing::Values(Shape{1, 256, 4, 2, 8, 3, 2, 16, 8},
                                           Shape{2, 1024, 4, 2, 16, 4, 2, 8, 4},
                                           Shape{1, 512, 2, 1, 8, 2, 8, 16, 4}),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

}  // namespace
}  // namespace lighthouse::test
