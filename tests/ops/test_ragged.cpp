// Any sequence length (SPEC.md §2, §4): a last, shorter tile, tiles smaller than m, and a
// level-0 tail after the pyramid's prefix. On lengths 1, p, 1000, 5000 and 100,000: the slot
// count formula, the §8 properties (slot count, no duplicates, increasing keys, no holes over
// all of [0, N)), agreement with the naive oracle (plan and float64 output), causality with a
// fixed plan, the causal selection's defining property, the dilated scorer with δ not
// dividing N, and that nothing at or after position N is ever read.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "lighthouse/config.h"
#include "ops/stages.h"
#include "support/common.h"
#include "support/oracle.h"

namespace lighthouse::test {
namespace {

// Ragged shapes: N not a multiple of p^(L-1) T, C < m, N < p^(L-1), N = 1, N = p.
std::vector<Shape> ragged_shapes() {
  //       B     N  H Hkv  D  L   p   k   m
  return {{1, 1, 2, 1, 8, 3, 4, 16, 8},       // N = 1: the whole sequence is the tail
          {2, 4, 2, 2, 8, 3, 4, 16, 8},       // N = p < p^(L-1): tail only, B 2
          {1, 1000, 2, 1, 8, 3, 4, 16, 8},    // 62 coarsest: tiles 31, 31, tail 8
          {1, 1000, 4, 2, 8, 2, 8, 24, 8},    // L 2, T 3: tiles 42, 42, 41, GQA
          {1, 1000, 2, 2, 8, 4, 2, 64, 4},    // L 4, T 16: 15 tiles of 8, one of 5
          {2, 5000, 2, 1, 8, 3, 4, 40, 8},    // T 5: tiles 63 x 4 + 60, tail 8, B 2
          {1, 5000, 2, 1, 8, 3, 2, 256, 16},  // T 16: 15 tiles of 79, one of 65
          {1, 300, 2, 1, 8, 3, 4, 128, 8},    // Nc 18 < T 16: 9 tiles of 2 < m, tail 12
          {1, 77, 1, 1, 8, 2, 16, 16, 2}};    // p 16: 4 tiles of 1 < m, tail 13
}

class Ragged : public ::testing::TestWithParam<Shape> {};

Geometry geometry(const Shape& s) {
  Geometry g;
  std::string err;
  EXPECT_TRUE(make_geometry(s.cfg(), s.N, &g, &err)) << err;
  return g;
}

// The slot count of SPEC.md §4 computed here from the tile sizes: every coarsest entry, then
// per level p children of each of min(m, candidates) selected entries; plus the tail.
int64_t slot_count(const Shape& s) {
  int64_t pc = 1;
  for (int64_t l = 1; l < s.L; ++l) pc *= s.p;
  const int64_t Nc = s.N / pc, T = s.k / s.m, C = (Nc + T - 1) / T;
  int64_t S = s.N - Nc * pc;
  for (int64_t first = 0; first < Nc; first += C) {
    int64_t n = std::min(C, Nc - first);
    S += n;
    for (int64_t l = s.L - 1; l >= 1; --l) {
      n = s.p * std::min(n, s.m);
      S += n;
    }
  }
  return S;
}

TEST(RaggedGeometry, SlotCountFormulaAndPyramidSize) {
  for (int64_t N : {1, 2, 4, 15, 16, 17, 255, 1000, 5000, 65535, 100000, 100001}) {
    for (const Shape& s : {Shape{1, N, 1, 1, 8, 3, 4, 16, 8}, Shape{1, N, 1, 1, 8, 4, 2, 64, 4},
                           Shape{1, N, 1, 1, 8, 2, 16, 24, 8}}) {
      const Geometry g = geometry(s);
      EXPECT_EQ(g.S, slot_count(s)) << s.name();
      EXPECT_EQ(g.Nf + g.tail, N);
      EXPECT_LT(g.tail, g.window[g.c]);
      EXPECT_LE(g.tiles, g.T);
      if (g.tiles > 0) EXPECT_TRUE(g.C_last >= 1 && g.C_last <= g.C) << s.name();
      EXPECT_EQ(seq_len_from_pyramid(g.P, s.L, s.p), N) << s.name();
    }
  }
  // Divisible N with C >= m: the paper's formula S = Nc + (L-1) p k, unchanged.
  const Geometry g = geometry({1, 524288, 1, 1, 8, 3, 4, 2048, 128});
  EXPECT_EQ(g.S, 32768 + 16384);
  EXPECT_EQ(g.tiles, 16);
  EXPECT_EQ(g.tail, 0);
}

TEST(RaggedGeometry, PyramidSizeRoundTripsForEveryLength) {
  for (int64_t L : {2, 3, 5})
    for (int64_t p : {2, 4, 16})
      for (int64_t N = 1; N <= 3000; ++N) {
        const Geometry g = level_geometry(L, p, N);
        ASSERT_EQ(seq_len_from_pyramid(g.P, L, p), N) << "L " << L << " p " << p;
        if (N > 1) ASSERT_GT(g.P, level_geometry(L, p, N - 1).P);
      }
  EXPECT_EQ(seq_len_from_pyramid(16 + 4 + 1 + 16, 3, 4), -1);  // tail 16 = p^c: no such N
}

// §8.1, §8.2 on ragged N, and the plan equals the oracle's (stratified and causal).
TEST_P(Ragged, PlanPropertiesAndOracle) {
  const Shape s = GetParam();
  const Geometry g = geometry(s);
  const oracle::Levels lv(s.N, s.L, s.p);
  ASSERT_EQ(lv.P(), g.P);
  const Inputs in = random_inputs(s, at::kDouble, 11);
  for (Selection rule : {Selection::Stratified, Selection::Causal}) {
    Config cfg = s.cfg();
    cfg.selection = rule;
    const Plan plan = lighthouse::plan(in.q, in.k, cfg);
    expect_valid_table(plan, slot_count(s), g.P);
    const auto want = oracle::plan(in.q, in.k, s.L, s.p, s.k, s.m, rule == Selection::Causal);
    EXPECT_TRUE(at::equal(plan.slots, want.slots)) << selection_name(rule);
    EXPECT_TRUE(at::equal(plan.inverse, want.inverse)) << selection_name(rule);
    const std::vector<int64_t> inv = to_vector(plan.inverse), sl = to_vector(plan.slots);
    for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
      auto emitted = [&](int64_t l, int64_t i) { return inv[bh * g.P + lv.off[l] + i] >= 0; };
      auto selected = [&](int64_t l, int64_t i) { return l > 0 && emitted(l - 1, i * s.p); };
      // No holes: windows of emitted unselected entries and emitted tokens partition [0, N).
      std::vector<int> cover(s.N, 0);
      for (int64_t l = 0; l < s.L; ++l)
        for (int64_t i = 0; i < lv.len(l); ++i)
          if (emitted(l, i) && !selected(l, i))
            for (int64_t t = i * lv.w[l]; t < (i + 1) * lv.w[l]; ++t) ++cover[t];
      for (int64_t t = 0; t < s.N; ++t) ASSERT_EQ(cover[t], 1) << "position " << t;
      // Keys strictly increase; the tail's tokens are the last slots, in order.
      double prev = -1.0;
      for (int64_t n = 0; n < g.S; ++n) {
        const int64_t e = sl[bh * g.S + n], l = lv.level(e), i = lv.local(e);
        const double key = oracle::key(l, i, s.p, selected(l, i));
        ASSERT_GT(key, prev) << "slot " << n;
        prev = key;
      }
      for (int64_t u = 0; u < g.tail; ++u) EXPECT_EQ(sl[bh * g.S + g.S - g.tail + u], g.Nf + u);
    }
  }
}

// §8.5 in float64: output and gradients equal the oracle's for the op's plan.
TEST_P(Ragged, AgreesWithOracleInFloat64) {
  const Shape s = GetParam();
  if (s.N > 1000) GTEST_SKIP() << "the oracle's S x S softmax is for short sequences";
  const Inputs in = random_inputs(s, at::kDouble, 12);
  const Plan plan = lighthouse::plan(in.q, in.k, s.cfg());
  const at::Tensor dout = randn({s.B, s.N, s.H, s.D}, at::kDouble, 13);
  const FwdBwd got = run_attention(in, s.cfg(), dout);
  at::Tensor q = in.q.clone().requires_grad_(), k = in.k.clone().requires_grad_();
  at::Tensor v = in.v.clone().requires_grad_();
  const at::Tensor o = oracle::attention(q, k, v, plan.slots, s.L, s.p);
  (o * dout).sum().backward();
  EXPECT_LT(rel_err(got.o, o), 1e-12);
  EXPECT_LT(rel_err(got.dq, q.grad()), 1e-12);
  EXPECT_LT(rel_err(got.dk, k.grad()), 1e-12);
  EXPECT_LT(rel_err(got.dv, v.grad()), 1e-12);
}

// §8.3: with the plan fixed, o_t does not move when inputs after t change (cuts in the last
// tile, at the pyramid's end and in the tail).
TEST_P(Ragged, CausalWithFixedPlan) {
  const Shape s = GetParam();
  const Geometry g = geometry(s);
  const Inputs in = random_inputs(s, at::kDouble, 14);
  const Plan plan = lighthouse::plan(in.q, in.k, s.cfg());
  const at::Tensor o = attention(in.q, in.k, in.v, plan, s.cfg());
  std::set<int64_t> cuts = {0, s.N / 2, s.N - 1, std::max<int64_t>(g.Nf - 1, 0), g.Nf};
  for (int64_t t : cuts) {
    if (t + 1 >= s.N) continue;
    Inputs x = random_inputs(s, at::kDouble, 15 + t);
    x.q.narrow(1, 0, t + 1).copy_(in.q.narrow(1, 0, t + 1));
    x.k.narrow(1, 0, t + 1).copy_(in.k.narrow(1, 0, t + 1));
    x.v.narrow(1, 0, t + 1).copy_(in.v.narrow(1, 0, t + 1));
    const at::Tensor o2 = attention(x.q, x.k, x.v, plan, s.cfg());
    EXPECT_TRUE(bitwise_equal(o.narrow(1, 0, t + 1), o2.narrow(1, 0, t + 1))) << "cut " << t;
  }
}

// Causal selection (SPEC.md §12) on ragged N: the outputs at positions <= t stay bitwise equal
// when the inputs after t are redrawn, with the plan recomputed.
TEST_P(Ragged, CausalSelectionIsCausal) {
  const Shape s = GetParam();
  const Geometry g = geometry(s);
  Config cfg = s.cfg();
  cfg.selection = Selection::Causal;
  const Inputs in = random_inputs(s, at::kDouble, 16);
  const at::Tensor o = attention(in.q, in.k, in.v, cfg);
  for (int64_t t : std::set<int64_t>{s.N / 3, std::max<int64_t>(g.Nf - 1, 0), s.N - 2}) {
    if (t < 0 || t + 1 >= s.N) continue;
    Inputs x = random_inputs(s, at::kDouble, 17 + t);
    x.q.narrow(1, 0, t + 1).copy_(in.q.narrow(1, 0, t + 1));
    x.k.narrow(1, 0, t + 1).copy_(in.k.narrow(1, 0, t + 1));
    x.v.narrow(1, 0, t + 1).copy_(in.v.narrow(1, 0, t + 1));
    const at::Tensor o2 = attention(x.q, x.k, x.v, cfg);
    EXPECT_TRUE(bitwise_equal(o.narrow(1, 0, t + 1), o2.narrow(1, 0, t + 1))) << "cut " << t;
  }
}

// Storage after position N is never read: inputs that are views of a longer buffer whose rows
// >= N are NaN give the same output and gradients as fresh copies.
TEST_P(Ragged, NeverReadsPastTheSequence) {
  Shape s = GetParam();
  s.B = 1;  // a narrow along N of a B = 1 tensor stays contiguous: the kernels see the buffer
  const Inputs in = random_inputs(s, at::kFloat, 18);
  auto in_nan_buffer = [&](const at::Tensor& x) {
    at::Tensor buf = at::full({1, s.N + 7, x.size(2), s.D}, std::nan(""), x.options());
    buf.narrow(1, 0, s.N).copy_(x);
    return buf.narrow(1, 0, s.N);
  };
  const Inputs padded{in_nan_buffer(in.q), in_nan_buffer(in.k), in_nan_buffer(in.v)};
  ASSERT_TRUE(padded.q.is_contiguous());
  const at::Tensor dout = randn({1, s.N, s.H, s.D}, at::kFloat, 19);
  auto run = [&](const Inputs& x, const Config& cfg) {  // no clone: the views reach the op
    at::Tensor q = x.q.detach().requires_grad_(), k = x.k.detach().requires_grad_();
    at::Tensor v = x.v.detach().requires_grad_();
    const at::Tensor o = attention(q, k, v, cfg);
    (o * dout).sum().backward();
    return FwdBwd{o.detach(), q.grad(), k.grad(), v.grad()};
  };
  for (Scorer scorer : {Scorer::Norm, Scorer::Dilated}) {
    Config cfg = s.cfg();
    cfg.scorer = scorer;
    cfg.dilation = 3;
    const FwdBwd a = run(in, cfg), b = run(padded, cfg);
    EXPECT_TRUE(a.o.isfinite().all().item<bool>());
    EXPECT_TRUE(bitwise_equal(a.o, b.o)) << scorer_name(scorer);
    EXPECT_TRUE(bitwise_equal(a.dq, b.dq) && bitwise_equal(a.dk, b.dk) &&
                bitwise_equal(a.dv, b.dv))
        << scorer_name(scorer);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Ragged, ::testing::ValuesIn(ragged_shapes()),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

// The dilated scorer with δ not dividing N (SPEC.md §4): the strided-SDPA path (zero padding
// at the end of each sub-sequence) equals the plain-loop reference.
TEST(RaggedDilated, StridedSdpaEqualsReference) {
  for (int64_t N : {1, 5, 1000, 1003}) {
    for (int64_t delta : {1, 3, 4, 7}) {
      const Shape s{1, N, 2, 1, 8, 3, 4, 16, 8};
      const Inputs in = random_inputs(s, at::kDouble, 20 + N + delta);
      const Geometry g = level_geometry(s.L, s.p, N);
      auto [rq, rk] = ops::dilated_score(in.q, in.k, in.v, s.L, s.p, delta);  // CPU reference
      auto [sq, sk] = ops::dilated_score_sdpa(in.q, in.k, in.v, delta, g);
      EXPECT_LT(rel_err(sq, rq), 1e-6) << "N " << N << " delta " << delta;
      EXPECT_LT(rel_err(sk, rk), 1e-6) << "N " << N << " delta " << delta;
      Config cfg = s.cfg();
      cfg.scorer = Scorer::Dilated;
      cfg.dilation = delta;
      expect_valid_table(lighthouse::plan(in.q, in.k, in.v, cfg), slot_count(s), g.P);
    }
  }
}

// A sequence shorter than the coarsest window has no tile: every token is a tail token in
// order, each scattered to itself, so the op is dense causal SDPA.
TEST(RaggedShort, ShorterThanTheCoarsestWindowIsDenseAttention) {
  for (int64_t N : {1, 4, 15}) {
    const Shape s{2, N, 4, 2, 8, 3, 4, 16, 8};
    const Inputs in = random_inputs(s, at::kDouble, 22 + N);
    EXPECT_LT(rel_err(attention(in.q, in.k, in.v, s.cfg()), dense_attention(in.q, in.k, in.v)),
              1e-12)
        << "N " << N;
  }
}

// 100,000 tokens on the CPU with small H, D and k: a last, shorter tile (T = 3) and, at
// 100,003, a tail; the plan is a valid table of the formula's size and the output is finite
// and causal at a cut in the tail.
TEST(RaggedLong, HundredThousandTokens) {
  for (int64_t N : {100000, 100003}) {
    const Shape s{1, N, 1, 1, 8, 3, 4, 24, 8};
    const Geometry g = geometry(s);
    EXPECT_EQ(g.tiles, 3);
    EXPECT_LT(g.C_last, g.C);
    const Inputs in = random_inputs(s, at::kFloat, 21);
    const Plan plan = lighthouse::plan(in.q, in.k, s.cfg());
    expect_valid_table(plan, slot_count(s), g.P);
    const at::Tensor o = attention(in.q, in.k, in.v, plan, s.cfg());
    EXPECT_TRUE(o.isfinite().all().item<bool>());
    EXPECT_GT(o.abs().sum().item<double>(), 0.0);
    const int64_t t = N - 2;
    Inputs x = in;
    x.v = in.v.clone();
    x.v.narrow(1, t + 1, N - t - 1).mul_(-3.0);
    const at::Tensor o2 = attention(x.q, x.k, x.v, plan, s.cfg());
    EXPECT_TRUE(bitwise_equal(o.narrow(1, 0, t + 1), o2.narrow(1, 0, t + 1)));
    EXPECT_FALSE(bitwise_equal(o, o2));
  }
}

}  // namespace
}  // namespace lighthouse::test
