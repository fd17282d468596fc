// Causal selection (SPEC.md §12): the defining property — outputs at positions <= t bitwise
// unchanged (float64, CPU) when inputs after t are redrawn, with the plan recomputed — at tile
// starts and ends, window boundaries and random cuts; agreement with the oracle's independent
// causal rule (tests/ops/oracle.cpp); determinism. Slot count, tree and no-holes properties
// run in test_plan_properties.cpp (PlanProperties.Causal*).
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <set>

#include "ops/stages.h"
#include "support/common.h"
#include "support/oracle.h"

namespace lighthouse::test {
namespace {

Config causal_cfg(const Shape& s) {
  Config c = s.cfg();
  c.selection = Selection::Causal;
  return c;
}

// Shapes for the causality sweep: L 2-4, p 2-8, GQA and MQA, T 1-4, C == m.
std::vector<Shape> causal_shapes() {
  //       B    N  H Hkv  D  L  p   k   m
  return {{1, 256, 4, 2, 8, 3, 2, 16, 8},   // GQA 2, T 2
          {2, 256, 2, 1, 8, 2, 4, 8, 4},    // L 2, MQA, B 2, T 2
          {1, 512, 2, 2, 8, 4, 2, 8, 4},    // L 4, T 2
          {1, 512, 2, 1, 8, 2, 8, 16, 4},   // p 8, T 4
          {1, 1024, 2, 1, 8, 3, 4, 16, 8},  // p 4, T 2
          {1, 64, 2, 2, 8, 2, 2, 32, 16},   // C == m: every coarsest entry refined
          {1, 1024, 1, 1, 8, 4, 4, 4, 4}};  // L 4, p 4, T 1
}

// Cuts t: the last position before and the first of every tile, the tile ends, window
// boundaries of every level, and random positions.
std::vector<int64_t> cuts(const Shape& s, uint64_t seed) {
  const int64_t T = s.k / s.m, span = s.N / T;
  std::set<int64_t> t;
  for (int64_t j = 0; j < T; ++j) {
    t.insert(j * span);
    t.insert(j * span + span - 1);
    if (j > 0) t.insert(j * span - 1);
  }
  int64_t w = s.p;
  for (int64_t l = 1; l < s.L; ++l, w *= s.p) {
    const int64_t i = (s.N / w) / 3;  // a window a third into the sequence
    t.insert(i * w - 1);
    t.insert(i * w);
    t.insert(i * w + 1);
  }
  std::mt19937_64 rng(seed);
  for (int n = 0; n < 6; ++n) t.insert(static_cast<int64_t>(rng() % (s.N - 1)));
  return {t.begin(), t.end()};
}

// q, k, v with every position > t redrawn.
Inputs redraw_after(const Shape& s, const Inputs& in, int64_t t, uint64_t seed) {
  const Inputs fresh = random_inputs(s, in.q.scalar_type(), seed);
  Inputs out{in.q.clone(), in.k.clone(), in.v.clone()};
  const int64_t n = in.q.size(1) - t - 1;
  out.q.narrow(1, t + 1, n).copy_(fresh.q.narrow(1, t + 1, n));
  out.k.narrow(1, t + 1, n).copy_(fresh.k.narrow(1, t + 1, n));
  out.v.narrow(1, t + 1, n).copy_(fresh.v.narrow(1, t + 1, n));
  return out;
}

// Number of cuts at which outputs <= t changed (the prefix compared bitwise), and whether the
// redraw changed anything at all after t (so the comparison is not vacuous).
struct Sweep {
  int leaked = 0;
  int cuts = 0;
  int changed_after = 0;  // of the cuts before the last position
  int inner = 0;          // cuts before the last position
};

Sweep sweep(const Shape& s, const Config& cfg, uint64_t seed) {
  const Inputs in = random_inputs(s, at::kDouble, seed);
  const at::Tensor o = attention(in.q, in.k, in.v, cfg);  // [B, N, H, D]
  Sweep r;
  for (int64_t t : cuts(s, seed)) {
    const Inputs moved = redraw_after(s, in, t, seed + 1000 + t);
    const at::Tensor o2 = attention(moved.q, moved.k, moved.v, cfg);  // [B, N, H, D]
    ++r.cuts;
    if (!bitwise_equal(o2.narrow(1, 0, t + 1), o.narrow(1, 0, t + 1))) ++r.leaked;
    if (t == s.N - 1) continue;
    ++r.inner;
    if (!at::equal(o2.narrow(1, t + 1, s.N - t - 1), o.narrow(1, t + 1, s.N - t - 1)))
      ++r.changed_after;
  }
  return r;
}

// False when every coarsest entry of a tile is refined and there is no finer level to choose.
bool has_choice(const Shape& s) {
  int64_t pc = 1;  // p^(L-1)
  for (int64_t l = 1; l < s.L; ++l) pc *= s.p;
  return !(s.L == 2 && s.N / pc / (s.k / s.m) == s.m);
}

class CausalSelection : public ::testing::TestWithParam<Shape> {};

// The defining property, with the plan recomputed at every cut.
TEST_P(CausalSelection, OutputsBeforeCutUnchanged) {
  const Shape s = GetParam();
  const Sweep r = sweep(s, causal_cfg(s), 31);
  EXPECT_EQ(r.leaked, 0) << "of " << r.cuts << " cuts";
  EXPECT_EQ(r.changed_after, r.inner) << "the redraw must change the outputs after the cut";
  EXPECT_GE(r.cuts, 12);
}

// The same sweep detects the published rule's leak (the test can fail).
TEST_P(CausalSelection, StratifiedLeaks) {
  const Shape s = GetParam();
  if (!has_choice(s)) GTEST_SKIP() << "C == m with L = 2: nothing to choose";
  const Sweep r = sweep(s, s.cfg(), 31);
  EXPECT_GT(r.leaked, 0) << "of " << r.cuts << " cuts";
}

// The plan equals the oracle's causal rule, written separately from SPEC.md §12.
TEST_P(CausalSelection, MatchesOracle) {
  const Shape s = GetParam();
  for (uint64_t seed : {41u, 42u}) {
    const Inputs in = random_inputs(s, seed == 41u ? at::kDouble : at::kFloat, seed);
    const Plan pl = plan(in.q, in.k, causal_cfg(s));
    const oracle::Selection want = oracle::plan(in.q, in.k, s.L, s.p, s.k, s.m, true);
    EXPECT_TRUE(at::equal(pl.slots, want.slots)) << "seed " << seed;
    EXPECT_TRUE(at::equal(pl.inverse, want.inverse)) << "seed " << seed;
    // And it is not the stratified plan (the rule does something different).
    if (has_choice(s))
      EXPECT_FALSE(at::equal(pl.slots, plan(in.q, in.k, s.cfg()).slots)) << "seed " << seed;
  }
}

// Heavy-tailed, flat, +inf and NaN scores: still the oracle's plan, a valid table.
TEST_P(CausalSelection, ExtremeScoresMatchOracle) {
  const Shape s = GetParam();
  Inputs in = random_inputs(s, at::kFloat, 43);
  in.q = in.q * randn({s.B, s.N, s.H, 1}, at::kFloat, 44).exp().pow(4);  // heavy tails
  in.k = in.k / in.k.norm(2, -1, true);                                  // flat norms
  in.q.select(1, s.N / 3).fill_(std::numeric_limits<float>::infinity());
  in.k.select(1, s.N / 2).fill_(std::numeric_limits<float>::quiet_NaN());
  const Plan pl = plan(in.q, in.k, causal_cfg(s));
  const oracle::Selection want = oracle::plan(in.q, in.k, s.L, s.p, s.k, s.m, true);
  EXPECT_TRUE(at::equal(pl.slots, want.slots));
  EXPECT_TRUE(at::equal(pl.inverse, want.inverse));
  expect_valid_table(pl, s.S(), s.P());
}

// Bitwise equal plans run to run and for 1, 2 and 3 intra-op threads.
TEST_P(CausalSelection, Deterministic) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kFloat, 45);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const Plan ref = plan(in.q, in.k, causal_cfg(s));
  for (int n : {1, 2, 3}) {
    at::set_num_threads(n);
    const Plan again = plan(in.q, in.k, causal_cfg(s));
    EXPECT_TRUE(at::equal(again.slots, ref.slots)) << n << " threads";
    EXPECT_TRUE(at::equal(again.inverse, ref.inverse)) << n << " threads";
  }
  at::set_num_threads(threads);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CausalSelection, ::testing::ValuesIn(causal_shapes()),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

}  // namespace
}  // namespace lighthouse::test
