// SPEC.md §8 properties 1, 2 and 4 of the plan on random inputs, over many shapes (1 and 2
// for the causal rule of §12 too): slot
// count, no duplicates, strictly increasing keys, inverse consistent with slots, a closed
// selection tree, no holes, and Aq / Ak exactly the top m/2 by sq / by sk. The selection is
// read back from the slot table alone (an entry is selected iff its children are emitted).
#include <gtest/gtest.h>

#include <set>

#include "ops/stages.h"
#include "support/common.h"
#include "support/oracle.h"

namespace lighthouse::test {
namespace {

// One (batch, head) of a plan with its scores, and the checks of the properties.
struct HeadPlan {
  const Shape& s;
  const oracle::Levels& lv;
  std::vector<int64_t> slots;    // [S]
  std::vector<int64_t> inverse;  // [P]
  const float* sq;               // [P] scores of the query head
  const float* sk;               // [P] scores of its KV head

  bool emitted(int64_t l, int64_t i) const { return inverse[lv.off[l] + i] >= 0; }
  bool selected(int64_t l, int64_t i) const { return l > 0 && emitted(l - 1, i * s.p); }

  void check_table() const {
    ASSERT_EQ(static_cast<int64_t>(slots.size()), s.S());
    std::set<int64_t> seen;
    for (int64_t e : slots) {
      ASSERT_TRUE(e >= 0 && e < lv.P()) << "pyramid index " << e;
      EXPECT_TRUE(seen.insert(e).second) << "pyramid index " << e << " appears twice";
    }
    int64_t listed = 0;
    for (int64_t e = 0; e < lv.P(); ++e) {
      if (inverse[e] < 0) continue;
      ++listed;
      ASSERT_LT(inverse[e], s.S());
      EXPECT_EQ(slots[inverse[e]], e) << "inverse[" << e << "] = " << inverse[e];
    }
    EXPECT_EQ(listed, s.S()) << "inverse lists a different number of entries than slots";
  }

  void check_keys() const {
    double prev = -1.0;
    for (size_t n = 0; n < slots.size(); ++n) {
      const int64_t l = lv.level(slots[n]), i = lv.local(slots[n]);
      const double key = oracle::key(l, i, s.p, selected(l, i));
      EXPECT_GT(key, prev) << "slot " << n << " (level " << l << ", index " << i << ")";
      prev = key;
    }
  }

  // The emitted entries form the cascade's tree: all coarsest entries of every tile, exactly
  // m selected per level per tile, and an entry below the coarsest level is emitted iff its
  // parent is selected; a selected entry has all p children emitted.
  void check_tree(int64_t tile) const {
    const int64_t c = s.L - 1, T = s.k / s.m, C = lv.len(c) / T;
    for (int64_t l = c; l >= 0; --l) {
      const int64_t per_tile = lv.len(l) / T;
      int64_t n_emitted = 0, n_selected = 0;
      for (int64_t i = tile * per_tile; i < (tile + 1) * per_tile; ++i) {
        const bool parent_sel = l == c || selected(l + 1, i / s.p);
        EXPECT_EQ(emitted(l, i), parent_sel) << "level " << l << " index " << i;
        n_emitted += emitted(l, i);
        if (l == 0 || !emitted(l, i)) continue;
        n_selected += selected(l, i);
        for (int64_t ch = 1; ch < s.p; ++ch)
          EXPECT_EQ(emitted(l - 1, i * s.p + ch), selected(l, i))
              << "children of " << l << "," << i;
      }
      EXPECT_EQ(n_emitted, l == c ? C : s.m * s.p) << "tile " << tile << " level " << l;
      if (l > 0) EXPECT_EQ(n_selected, s.m) << "tile " << tile << " level " << l;
    }
  }

  // Windows of emitted unselected entries plus emitted level-0 tokens cover every base
  // position of the tile exactly once.
  void check_no_holes(int64_t tile) const {
    const int64_t T = s.k / s.m, span = s.N / T;
    std::vector<int> cover(span, 0);
    for (int64_t e : slots) {
      const int64_t l = lv.level(e), i = lv.local(e);
      if (selected(l, i)) continue;
      for (int64_t t = i * lv.w[l]; t < (i + 1) * lv.w[l]; ++t)
        if (t >= tile * span && t < (tile + 1) * span) ++cover[t - tile * span];
    }
    for (int64_t t = 0; t < span; ++t)
      ASSERT_EQ(cover[t], 1) << "base position " << tile * span + t << " of tile " << tile;
  }

  // Aq = the m/2 candidates ranked first by sq; Ak = the m/2 of the rest ranked first by sk
  // (ties: smaller index). Ranks are counted pairwise, with no sort.
  void check_stratified(int64_t tile) const {
    const int64_t T = s.k / s.m;
    auto before = [](const float* sc, int64_t a, int64_t b) {
      return sc[a] > sc[b] || (sc[a] == sc[b] && a < b);
    };
    for (int64_t l = s.L - 1; l >= 1; --l) {
      const int64_t per_tile = lv.len(l) / T;
      const float* q = sq + lv.off[l];
      const float* k = sk + lv.off[l];
      std::vector<int64_t> cand;
      for (int64_t i = tile * per_tile; i < (tile + 1) * per_tile; ++i)
        if (emitted(l, i)) cand.push_back(i);
      std::set<int64_t> aq, want;
      for (int64_t x : cand) {
        int64_t rank = 0;
        for (int64_t y : cand) rank += before(q, y, x);
        if (rank < s.m / 2) aq.insert(x);
      }
      ASSERT_EQ(static_cast<int64_t>(aq.size()), s.m / 2);
      want = aq;
      for (int64_t x : cand) {
        if (aq.count(x)) continue;
        int64_t rank = 0;
        for (int64_t y : cand) rank += !aq.count(y) && before(k, y, x);
        if (rank < s.m / 2) want.insert(x);
      }
      for (int64_t x : cand)
        EXPECT_EQ(selected(l, x), want.count(x) > 0)
            << "tile " << tile << " level " << l << " index " << x << " sq " << q[x] << " sk "
            << k[x] << (aq.count(x) ? " (in Aq)" : "");
    }
  }
};

class PlanProperties : public ::testing::TestWithParam<Shape> {};

void check_plan(const Shape& s, const Inputs& in, Selection rule = Selection::Stratified) {
  Config cfg = s.cfg();
  cfg.selection = rule;
  const Plan pl = plan(in.q, in.k, cfg);
  ASSERT_EQ(pl.slots.sizes(), (at::IntArrayRef{s.B, s.H, s.S()}));
  ASSERT_EQ(pl.inverse.sizes(), (at::IntArrayRef{s.B, s.H, s.P()}));
  ASSERT_EQ(pl.slots.scalar_type(), at::kLong);
  ASSERT_EQ(pl.inverse.scalar_type(), at::kLong);
  const at::Tensor sq = std::get<1>(ops::pool_score(in.q, s.L, s.p, false, true)).contiguous();
  const at::Tensor sk = std::get<1>(ops::pool_score(in.k, s.L, s.p, false, true)).contiguous();
  const oracle::Levels lv(s.N, s.L, s.p);
  const std::vector<int64_t> slots = to_vector(pl.slots), inverse = to_vector(pl.inverse);
  const int64_t S = s.S(), P = s.P(), T = s.k / s.m;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      SCOPED_TRACE("batch " + std::to_string(b) + " head " + std::to_string(h));
      const int64_t bh = b * s.H + h, hk = h / (s.H / s.Hkv);
      HeadPlan hp{s,
                  lv,
                  std::vector<int64_t>(slots.begin() + bh * S, slots.begin() + (bh + 1) * S),
                  std::vector<int64_t>(inverse.begin() + bh * P, inverse.begin() + (bh + 1) * P),
                  sq.data_ptr<float>() + bh * P,
                  sk.data_ptr<float>() + (b * s.Hkv + hk) * P};
      hp.check_table();
      hp.check_keys();
      for (int64_t j = 0; j < T; ++j) {
        hp.check_tree(j);
        hp.check_no_holes(j);
        if (rule == Selection::Stratified) hp.check_stratified(j);
      }
    }
}

TEST_P(PlanProperties, Float32) {
  check_plan(GetParam(), random_inputs(GetParam(), at::kFloat, 21));
}

TEST_P(PlanProperties, Float64) {
  check_plan(GetParam(), random_inputs(GetParam(), at::kDouble, 22));
}

// The causal rule (SPEC.md §12) keeps properties 1 and 2: slot count, tree, no holes.
TEST_P(PlanProperties, CausalFloat32) {
  check_plan(GetParam(), random_inputs(GetParam(), at::kFloat, 26), Selection::Causal);
}

TEST_P(PlanProperties, CausalFloat64) {
  check_plan(GetParam(), random_inputs(GetParam(), at::kDouble, 27), Selection::Causal);
}

// Heavy-tailed scores (a few huge rows) and a constant-norm head: selection still valid.
TEST_P(PlanProperties, SkewedAndFlatScores) {
  const Shape s = GetParam();
  Inputs in = random_inputs(s, at::kFloat, 23);
  const at::Tensor boost = randn({s.B, s.N, s.H, 1}, at::kFloat, 24).exp().pow(4);  // [B, N, H, 1]
  in.q = in.q * boost;
  in.k = in.k / in.k.norm(2, -1, true);  // every key has norm 1 up to rounding
  check_plan(s, in);
}

// Each (batch, head) is planned on its own: slicing the batch or the heads slices the plan.
TEST_P(PlanProperties, BatchesAndHeadsIndependent) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kFloat, 25);
  const Plan full = plan(in.q, in.k, s.cfg());
  for (int64_t b = 0; b < s.B; ++b) {
    const Plan one = plan(in.q.narrow(0, b, 1), in.k.narrow(0, b, 1), s.cfg());
    EXPECT_TRUE(at::equal(one.slots, full.slots.narrow(0, b, 1))) << "batch " << b;
    EXPECT_TRUE(at::equal(one.inverse, full.inverse.narrow(0, b, 1))) << "batch " << b;
  }
  const int64_t group = s.H / s.Hkv;
  const Plan head = plan(in.q.narrow(2, s.H - group, group), in.k.narrow(2, s.Hkv - 1, 1), s.cfg());
  EXPECT_TRUE(at::equal(head.slots, full.slots.narrow(1, s.H - group, group)));
  EXPECT_TRUE(at::equal(head.inverse, full.inverse.narrow(1, s.H - group, group)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, PlanProperties, ::testing::ValuesIn(property_shapes()),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

}  // namespace
}  // namespace lighthouse::test
