// The dilated scorer (SPEC.md §4) on CPU: scores against an independent float64 oracle written
// here from the spec (plain loops over all positions, the strided sub-sequence found by
// t mod δ, window maxima straight from level 0), the stock-SDPA path of the CUDA kernel
// (ops::dilated_score_sdpa) against the reference, the queries/keys swap, the GQA mapping,
// the plan built from these scores, no gradient through the scores, and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "ops/stages.h"
#include "support/common.h"
#include "support/oracle.h"

namespace lighthouse::test {
namespace {

// Oracle level-0 score of one (b, h, t): ||sum_s softmax_s(x_t . y_s / sqrt(D)) v_s|| over
// s <= t with s mod δ == t mod δ. x, y, v: [N, D] float64 accessors of one head.
double oracle_norm(const at::TensorAccessor<double, 2>& x, const at::TensorAccessor<double, 2>& y,
                   const at::TensorAccessor<double, 2>& v, int64_t t, int64_t delta) {
  const int64_t N = x.size(0), D = x.size(1);
  std::vector<int64_t> members;
  for (int64_t s = 0; s < N; ++s)
    if (s <= t && s % delta == t % delta) members.push_back(s);
  std::vector<double> logit;
  double mx = -INFINITY;
  for (int64_t s : members) {
    double dot = 0;
    for (int64_t d = 0; d < D; ++d) dot += x[t][d] * y[s][d];
    logit.push_back(dot / std::sqrt(static_cast<double>(D)));
    mx = std::max(mx, logit.back());
  }
  double z = 0;
  for (double& l : logit) z += (l = std::exp(l - mx));
  double ss = 0;
  for (int64_t d = 0; d < D; ++d) {
    double o = 0;
    for (size_t j = 0; j < members.size(); ++j) o += logit[j] / z * v[members[j]][d];
    ss += o * o;
  }
  return std::sqrt(ss);
}

// Oracle scores sq, sk [B, H, P] float32 of float64 q [B, N, H, D], k, v [B, N, Hkv, D].
// swap = false gives sk = sq (Attn(Q, K, V) for both): the wrong reading a test must be
// able to tell apart.
std::pair<at::Tensor, at::Tensor> oracle_scores(const Inputs& in, int64_t L, int64_t p,
                                                int64_t delta, bool swap = true) {
  const int64_t B = in.q.size(0), N = in.q.size(1), H = in.q.size(2), Hkv = in.k.size(2);
  const oracle::Levels lv(N, L, p);
  at::Tensor sq = at::empty({B, H, lv.P()}, at::kFloat);  // [B, H, P]
  at::Tensor sk = at::empty({B, H, lv.P()}, at::kFloat);  // [B, H, P]
  const at::Tensor qh = in.q.to(at::kDouble).permute({0, 2, 1, 3}).contiguous();  // [B, H, N, D]
  const at::Tensor kh = in.k.to(at::kDouble).permute({0, 2, 1, 3}).contiguous();  // [B, Hkv, N, D]
  const at::Tensor vh = in.v.to(at::kDouble).permute({0, 2, 1, 3}).contiguous();  // [B, Hkv, N, D]
  auto qa = qh.accessor<double, 4>(), ka = kh.accessor<double, 4>(), va = vh.accessor<double, 4>();
  auto sqa = sq.accessor<float, 3>(), ska = sk.accessor<float, 3>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / Hkv);  // GQA: query head h reads KV head g(h)
      std::vector<double> s0q(N), s0k(N);
      for (int64_t t = 0; t < N; ++t) {
        s0q[t] = oracle_norm(qa[b][h], ka[b][g], va[b][g], t, delta);
        s0k[t] = swap ? oracle_norm(ka[b][g], qa[b][h], va[b][g], t, delta) : s0q[t];
      }
      for (int64_t l = 0; l < L; ++l)
        for (int64_t i = 0; i < lv.len(l); ++i) {
          double mq = -INFINITY, mk = -INFINITY;  // max over the window W(l, i) of level 0
          for (int64_t t = i * lv.w[l]; t < (i + 1) * lv.w[l]; ++t) {
            mq = std::max(mq, s0q[t]);
            mk = std::max(mk, s0k[t]);
          }
          sqa[b][h][lv.off[l] + i] = static_cast<float>(mq);
          ska[b][h][lv.off[l] + i] = static_cast<float>(mk);
        }
    }
  return {sq, sk};
}

Config dilated_cfg(const Shape& s, int64_t delta) {
  Config c = s.cfg();
  c.scorer = Scorer::Dilated;
  c.dilation = delta;
  return c;
}

struct Case {
  Shape s;
  int64_t delta;
};

std::vector<Case> cases() {
  //        B    N  H Hkv  D  L  p   k  m     δ
  return {{{2, 256, 4, 2, 16, 3, 2, 16, 8}, 4},   // GQA 2, B 2
          {{1, 512, 2, 2, 8, 2, 8, 16, 4}, 2},    // L 2, p 8
          {{1, 256, 4, 1, 8, 4, 2, 8, 4}, 8},     // MQA, L 4
          {{1, 192, 3, 3, 8, 2, 2, 24, 8}, 3},    // δ 3, odd H, N not a power of two
          {{1, 128, 2, 1, 8, 3, 2, 8, 4}, 1}};    // δ 1: plain causal attention
}

class Dilated : public ::testing::TestWithParam<Case> {};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::to_string(info.index) + "_" + info.param.s.name() + "_d" +
         std::to_string(info.param.delta);
}

TEST_P(Dilated, ScoresMatchFloat64Oracle) {
  const auto [s, delta] = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 301);
  auto [sq, sk] = ops::dilated_score(in.q, in.k, in.v, s.L, s.p, delta);  // [B, H, P] each
  auto [oq, ok] = oracle_scores(in, s.L, s.p, delta);
  ASSERT_EQ(sq.sizes(), oq.sizes());
  ASSERT_EQ(sk.sizes(), ok.sizes());
  EXPECT_EQ(sq.scalar_type(), at::kFloat);
  EXPECT_LE(rel_err(sq, oq), 1e-6) << "sq";
  EXPECT_LE(rel_err(sk, ok), 1e-6) << "sk";
  // float32 inputs compute in float32: the same scores to float32 rounding.
  const Inputs in32{in.q.to(at::kFloat), in.k.to(at::kFloat), in.v.to(at::kFloat)};
  auto [sq32, sk32] = ops::dilated_score(in32.q, in32.k, in32.v, s.L, s.p, delta);
  EXPECT_LE(rel_err(sq32, oq), 1e-5);
  EXPECT_LE(rel_err(sk32, ok), 1e-5);
}

// sk is Attn(K, Q, V): queries and keys swapped, not a copy of sq nor of the norm scores.
TEST_P(Dilated, KeysScoreSwapsQueriesAndKeys) {
  const auto [s, delta] = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 302);
  auto [sq, sk] = ops::dilated_score(in.q, in.k, in.v, s.L, s.p, delta);
  auto [unswapped_q, unswapped_k] = oracle_scores(in, s.L, s.p, delta, /*swap=*/false);
  EXPECT_GT(rel_err(sk, unswapped_k), 1e-3) << "sk equals Attn(Q, K, V)";
  EXPECT_LE(rel_err(sq, unswapped_q), 1e-6);
  // Position 0 attends only to itself in both calls: both scores are ||v_0||.
  const at::Tensor v0 = in.v.select(1, 0).repeat_interleave(s.H / s.Hkv, 1).norm(2, -1);  // [B, H]
  EXPECT_LE(rel_err(sq.select(2, 0), v0.to(at::kFloat)), 1e-6);
  EXPECT_LE(rel_err(sk.select(2, 0), v0.to(at::kFloat)), 1e-6);
}

// The stock-SDPA path (the CUDA kernel's code) on CPU: its strided views, head mapping and
// position order agree with the reference, for contiguous and transposed inputs.
TEST_P(Dilated, SdpaPathMatchesReference) {
  const auto [s, delta] = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 303);
  Geometry g = level_geometry(s.L, s.p, s.N);
  auto [rq, rk] = ops::dilated_score(in.q, in.k, in.v, s.L, s.p, delta);
  auto [fq, fk] = ops::dilated_score_sdpa(in.q, in.k, in.v, delta, g);
  EXPECT_LE(rel_err(fq, rq), 1e-6);
  EXPECT_LE(rel_err(fk, rk), 1e-6);
  // [B, H, N, D] storage seen as [B, N, H, D]: not viewable, the path copies.
  const at::Tensor qt = in.q.transpose(1, 2).contiguous().transpose(1, 2);
  auto [tq, tk] = ops::dilated_score_sdpa(qt, in.k, in.v, delta, g);
  EXPECT_LE(rel_err(tq, rq), 1e-6);
  EXPECT_LE(rel_err(tk, rk), 1e-6);
  EXPECT_EQ(fq.scalar_type(), at::kFloat);
  EXPECT_TRUE(fq.is_contiguous() && fk.is_contiguous());
}

// GQA: changing KV head g changes the scores of exactly the query heads of group g.
TEST_P(Dilated, GqaHeadMapping) {
  const auto [s, delta] = GetParam();
  if (s.Hkv < 2) GTEST_SKIP() << "needs two KV heads";
  const Inputs in = random_inputs(s, at::kDouble, 304);
  Inputs edited = in;
  edited.k = in.k.clone();
  edited.k.select(2, 1).mul_(1.7).add_(0.3);
  auto [sq, sk] = ops::dilated_score(in.q, in.k, in.v, s.L, s.p, delta);
  auto [eq, ek] = ops::dilated_score(edited.q, edited.k, edited.v, s.L, s.p, delta);
  const int64_t group = s.H / s.Hkv;
  for (int64_t h = 0; h < s.H; ++h) {
    const bool touched = h / group == 1;
    EXPECT_EQ(at::equal(sq.select(1, h), eq.select(1, h)), !touched) << "sq head " << h;
    EXPECT_EQ(at::equal(sk.select(1, h), ek.select(1, h)), !touched) << "sk head " << h;
  }
}

// The op's plan is the selection of the dilated scores, and the op's output is attention with
// that plan; the plan differs from the norm scorer's.
TEST_P(Dilated, PlanIsTheSelectionOfTheScores) {
  const auto [s, delta] = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 305);
  const Config cfg = dilated_cfg(s, delta);
  const Plan pl = plan(in.q, in.k, in.v, cfg);
  expect_valid_table(pl, s.S(), s.P());
  // The oracle cascade on the op's own scores (their values are checked against the oracle
  // above; rounding-level differences could only move exact near-ties).
  auto [sq, sk] = ops::dilated_score(in.q, in.k, in.v, s.L, s.p, delta);
  const oracle::Selection want = oracle::select(sq, sk, s.L, s.p, s.k, s.m);
  EXPECT_TRUE(at::equal(pl.slots, want.slots));
  EXPECT_TRUE(at::equal(pl.inverse, want.inverse));
  const Plan norm = plan(in.q, in.k, s.cfg());
  EXPECT_FALSE(at::equal(pl.slots, norm.slots)) << "the dilated plan is the norm plan";
  const at::Tensor o = attention(in.q, in.k, in.v, cfg);
  EXPECT_TRUE(bitwise_equal(o, attention(in.q, in.k, in.v, pl, cfg)));
  EXPECT_LE(rel_err(o, oracle::attention(in.q, in.k, in.v, want.slots, s.L, s.p)), 1e-10);
}

// The scores carry no gradient: the op's backward equals the backward with its plan fixed.
TEST_P(Dilated, NoGradientThroughTheScores) {
  const auto [s, delta] = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 306);
  const Config cfg = dilated_cfg(s, delta);
  const at::Tensor grad_out = randn({s.B, s.N, s.H, s.D}, at::kDouble, 307);
  const FwdBwd op = run_attention(in, cfg, grad_out);
  const FwdBwd fixed = run_with_plan(in, plan(in.q, in.k, in.v, cfg), cfg, grad_out);
  EXPECT_GT(op.dq.abs().max().item<double>(), 0);
  EXPECT_TRUE(bitwise_equal(op.dq, fixed.dq));
  EXPECT_TRUE(bitwise_equal(op.dk, fixed.dk));
  EXPECT_TRUE(bitwise_equal(op.dv, fixed.dv));
  const at::Tensor q = in.q.clone().requires_grad_(true);
  auto [sq, sk] = ops::dilated_score(q, in.k, in.v, s.L, s.p, delta);
  EXPECT_FALSE(sq.requires_grad() || sk.requires_grad());
}

INSTANTIATE_TEST_SUITE_P(Cases, Dilated, ::testing::ValuesIn(cases()), case_name);

// Shape-only tracing: Meta tensors give the real shapes, for plan and the stage (attention on
// Meta needs torch's Python meta registrations: tests/python/test_package.py).
TEST(DilatedMeta, ShapesOnMeta) {
  const Shape s{1, 256, 4, 2, 16, 3, 2, 16, 8};
  auto meta = at::TensorOptions().device(at::kMeta).dtype(at::kFloat);
  const at::Tensor q = at::empty({s.B, s.N, s.H, s.D}, meta);
  const at::Tensor k = at::empty({s.B, s.N, s.Hkv, s.D}, meta);
  auto [sq, sk] = ops::dilated_score(q, k, k, s.L, s.p, 4);
  EXPECT_EQ(sq.sizes(), (at::IntArrayRef{s.B, s.H, s.P()}));
  EXPECT_EQ(sk.sizes(), (at::IntArrayRef{s.B, s.H, s.P()}));
  const Plan pl = plan(q, k, k, dilated_cfg(s, 4));
  EXPECT_EQ(pl.slots.sizes(), (at::IntArrayRef{s.B, s.H, s.S()}));
}

void expect_value_error(const std::function<void()>& call, const std::vector<std::string>& needles) {
  try {
    call();
    ADD_FAILURE() << "no error raised";
  } catch (const c10::ValueError& e) {
    const std::string msg = e.what_without_backtrace();
    for (const std::string& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "message \"" << msg << "\" lacks \"" << n << "\"";
  }
}

TEST(DilatedErrors, NameTheParameter) {
  const Shape s{1, 256, 4, 2, 8, 3, 2, 16, 8};
  const Inputs in = random_inputs(s, at::kDouble, 308);
  expect_value_error([&] { plan(in.q, in.k, dilated_cfg(s, 4)); },
                     {"lighthouse::plan", "v must be given for scorer \"dilated\""});
  // δ need not divide N (SPEC.md §4): 3 does not divide 256.
  EXPECT_EQ(plan(in.q, in.k, in.v, dilated_cfg(s, 3)).slots.size(2), s.S());
  expect_value_error([&] { attention(in.q, in.k, in.v, dilated_cfg(s, 0)); },
                     {"dilation (delta) must be >= 1, got 0"});
  expect_value_error([&] { ops::dilated_score(in.q, in.k, in.v, 3, 2, 0); },
                     {"lighthouse::_dilated_score", "dilation (delta) must be >= 1, got 0"});
  expect_value_error([&] { ops::dilated_score(in.q, in.k, in.v.narrow(1, 0, 128), 3, 2, 4); },
                     {"lighthouse::_dilated_score", "v sizes must equal k sizes"});
  // The norm scorer ignores the dilation: N % δ is no rule there.
  Config norm = s.cfg();
  norm.dilation = 3;
  EXPECT_EQ(plan(in.q, in.k, norm).slots.size(2), s.S());
}

}  // namespace
}  // namespace lighthouse::test
