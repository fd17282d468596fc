// GQA equals the same computation with K/V heads explicitly repeated (plan, output and
// gradients, dK/dV summed over each group); determinism (identical inputs give bitwise
// identical plans, outputs and gradients; the op's stages are thread-count invariant);
// attention(q, k, v) equals attention with the plan
// of plan(q, k); non-contiguous inputs give the contiguous result; the fused gather of q, k
// and v equals three single ones.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "ops/stages.h"
#include "support/common.h"

namespace lighthouse::test {
namespace {

std::vector<Shape> gqa_shapes() {
  std::vector<Shape> out;
  for (const Shape& s : property_shapes())
    if (s.H != s.Hkv && s.N <= 2048) out.push_back(s);
  return out;
}

class Gqa : public ::testing::TestWithParam<Shape> {};

TEST_P(Gqa, EqualsRepeatedKvHeads) {
  const Shape s = GetParam();
  const int64_t group = s.H / s.Hkv;
  const Inputs in = random_inputs(s, at::kDouble, 51);
  const Inputs rep{in.q, in.k.repeat_interleave(group, 2), in.v.repeat_interleave(group, 2)};
  const at::Tensor grad_out = randn({s.B, s.N, s.H, s.D}, at::kDouble, 52);  // [B, N, H, D]

  const Plan pg = plan(in.q, in.k, s.cfg());
  const Plan pr = plan(rep.q, rep.k, s.cfg());
  EXPECT_TRUE(at::equal(pg.slots, pr.slots));
  EXPECT_TRUE(at::equal(pg.inverse, pr.inverse));

  const FwdBwd g = run_attention(in, s.cfg(), grad_out);
  const FwdBwd r = run_attention(rep, s.cfg(), grad_out);
  auto group_sum = [&](const at::Tensor& x) {  // [B, N, H, D] -> [B, N, Hkv, D]
    return x.reshape({s.B, s.N, s.Hkv, group, s.D}).sum(3);
  };
  EXPECT_LE(rel_err(g.o, r.o), 1e-13);
  EXPECT_LE(rel_err(g.dq, r.dq), 1e-13);
  EXPECT_LE(rel_err(g.dk, group_sum(r.dk)), 1e-13);
  EXPECT_LE(rel_err(g.dv, group_sum(r.dv)), 1e-13);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Gqa, ::testing::ValuesIn(gqa_shapes()),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

class Determinism : public ::testing::TestWithParam<Shape> {};

void expect_bitwise(const FwdBwd& a, const FwdBwd& b) {
  EXPECT_TRUE(bitwise_equal(a.o, b.o)) << "output";
  EXPECT_TRUE(bitwise_equal(a.dq, b.dq)) << "dq";
  EXPECT_TRUE(bitwise_equal(a.dk, b.dk)) << "dk";
  EXPECT_TRUE(bitwise_equal(a.dv, b.dv)) << "dv";
}

TEST_P(Determinism, RunTwiceBitwise) {
  const Shape s = GetParam();
  for (at::ScalarType dt : {at::kFloat, at::kDouble, at::kBFloat16}) {
    SCOPED_TRACE(at::toString(dt));
    const Inputs in = random_inputs(s, dt, 61);
    const at::Tensor grad_out = randn({s.B, s.N, s.H, s.D}, dt, 62);  // [B, N, H, D]
    const Plan p1 = plan(in.q, in.k, s.cfg()), p2 = plan(in.q, in.k, s.cfg());
    EXPECT_TRUE(bitwise_equal(p1.slots, p2.slots));
    EXPECT_TRUE(bitwise_equal(p1.inverse, p2.inverse));
    expect_bitwise(run_attention(in, s.cfg(), grad_out), run_attention(in, s.cfg(), grad_out));
  }
}

// The op's own stages compute every output element in one fixed order, whatever the thread
// count: the plan (pooling, scores, selection), the gathers, the scatter and both backwards are
// bitwise equal with 1, 2 and 3 intra-op threads. The inner attention is stock SDPA, whose CPU
// backward reduces in a thread-count-dependent order (docs/op.md), so the whole op's gradients
// are bitwise reproducible only at a fixed thread count (RunTwiceBitwise).
std::vector<at::Tensor> stage_outputs(const Shape& s, const Inputs& in) {
  const Config cfg = s.cfg();
  const Plan pl = plan(in.q, in.k, cfg);
  const auto [pyr_q, sq] = ops::pool_score(in.q, s.L, s.p, true, true);  // [B, P1, H, D], [B, H, P]
  const auto [pyr_k, sk] = ops::pool_score(in.k, s.L, s.p, true, true);  // [B, P1, Hkv, D], ...
  const at::Tensor pyr_v = std::get<0>(ops::pool_score(in.v, s.L, s.p, true, false));
  const int64_t S = pl.slots.size(2);
  const at::Tensor o_tilde = randn({s.B, s.H, S, s.D}, at::kFloat, 71);  // [B, H, S, D]
  const at::Tensor grad_n = randn({s.B, s.N, s.H, s.D}, at::kFloat, 72);  // [B, N, H, D]
  return {pl.slots,
          pl.inverse,
          pyr_q,
          sq,
          pyr_k,
          sk,
          pyr_v,
          ops::gather(in.q, pyr_q, pl.slots, pl.inverse, s.L, s.p),
          ops::gather(in.k, pyr_k, pl.slots, pl.inverse, s.L, s.p),
          ops::scatter(o_tilde, pl.slots, pl.inverse, s.L, s.p),
          ops::scatter_backward(grad_n, pl.slots, s.L, s.p),
          ops::gather_backward(o_tilde, pl.inverse, s.L, s.p, s.H),
          ops::gather_backward(o_tilde, pl.inverse, s.L, s.p, s.Hkv)};
}

TEST_P(Determinism, StagesThreadCountInvariant) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kFloat, 63);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const std::vector<at::Tensor> one = stage_outputs(s, in);
  for (int n : {2, 3}) {
    at::set_num_threads(n);
    const std::vector<at::Tensor> many = stage_outputs(s, in);
    for (size_t i = 0; i < one.size(); ++i)
      EXPECT_TRUE(bitwise_equal(one[i], many[i])) << "stage output " << i << ", " << n << " threads";
  }
  at::set_num_threads(threads);
}

// The pyramids and scores of q, k and v as one op (_pool_score_qkv) bitwise equal three
// single _pool_score calls, with and without the scores.
TEST_P(Determinism, PoolScoreQkvEqualsThreePoolScores) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kFloat, 68);
  for (bool scores : {true, false}) {
    auto [pq, pk, pv, sq, sk] = ops::pool_score_qkv(in.q, in.k, in.v, s.L, s.p, scores);
    auto [pq1, sq1] = ops::pool_score(in.q, s.L, s.p, true, scores);
    auto [pk1, sk1] = ops::pool_score(in.k, s.L, s.p, true, scores);
    const at::Tensor pv1 = std::get<0>(ops::pool_score(in.v, s.L, s.p, true, false));
    const at::Tensor got[] = {pq, pk, pv, sq, sk}, want[] = {pq1, pk1, pv1, sq1, sk1};
    for (int i = 0; i < 5; ++i)
      EXPECT_TRUE(bitwise_equal(got[i], want[i])) << s.name() << " output " << i << ", scores "
                                                  << scores;
    EXPECT_EQ(sq.numel() > 0, scores) << s.name();
  }
}

// attention(q, k, v) is attention(q, k, v; plan(q, k)) exactly, gradients included.
// The gathers of q, k and v as one op (_gather_qkv, whose gradient is one _gather_backward_qkv)
// give bitwise the outputs and gradients of three single gathers.
TEST_P(Determinism, GatherQkvEqualsThreeGathers) {
  const Shape s = GetParam();
  const Inputs base = random_inputs(s, at::kDouble, 64);
  const Plan pl = plan(base.q, base.k, s.cfg());
  auto leaf = [](const at::Tensor& x) { return x.detach().clone().requires_grad_(); };
  const at::Tensor pq = std::get<0>(ops::pool_score(base.q, s.L, s.p, true, false));
  const at::Tensor pk = std::get<0>(ops::pool_score(base.k, s.L, s.p, true, false));
  const at::Tensor pv = std::get<0>(ops::pool_score(base.v, s.L, s.p, true, false));
  std::vector<at::Tensor> g;  // weights of each gathered tensor [B, H, S, D]
  for (uint64_t seed : {65, 66, 67})
    g.push_back(randn({s.B, s.H, s.S(), s.D}, at::kDouble, seed));

  const std::vector<at::Tensor> one = {leaf(base.q), leaf(base.k), leaf(base.v)};
  auto [qt, kt, vt] = ops::gather_qkv(one[0], one[1], one[2], pq, pk, pv, pl.slots, pl.inverse,
                                      s.L, s.p);
  ((qt * g[0]).sum() + (kt * g[1]).sum() + (vt * g[2]).sum()).backward();

  const std::vector<at::Tensor> three = {leaf(base.q), leaf(base.k), leaf(base.v)};
  const at::Tensor pyr[] = {pq, pk, pv};
  at::Tensor loss = at::zeros({}, at::kDouble);
  const at::Tensor fused[] = {qt, kt, vt};
  for (int i = 0; i < 3; ++i) {
    const at::Tensor t = ops::gather(three[i], pyr[i], pl.slots, pl.inverse, s.L, s.p);
    EXPECT_TRUE(bitwise_equal(fused[i].detach(), t.detach())) << s.name() << " output " << i;
    loss = loss + (t * g[i]).sum();
  }
  loss.backward();
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(bitwise_equal(one[i].grad(), three[i].grad())) << s.name() << " grad " << i;
}

TEST_P(Determinism, AttentionEqualsAttentionWithItsPlan) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 65);
  const at::Tensor grad_out = randn({s.B, s.N, s.H, s.D}, at::kDouble, 66);  // [B, N, H, D]
  expect_bitwise(run_attention(in, s.cfg(), grad_out),
                 run_with_plan(in, plan(in.q, in.k, s.cfg()), s.cfg(), grad_out));
}

// Skipping the value check of a plan the op just made changes nothing.
TEST_P(Determinism, UncheckedOwnPlanEqualsChecked) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 69);
  const Plan pl = plan(in.q, in.k, s.cfg());
  EXPECT_TRUE(bitwise_equal(attention(in.q, in.k, in.v, pl, s.cfg(), /*check_plan=*/false),
                            attention(in.q, in.k, in.v, pl, s.cfg())));
}

// Strided views ([B, H, N, D] storage seen as [B, N, H, D]) give the contiguous result.
TEST_P(Determinism, NonContiguousInputs) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 67);
  auto strided = [](const at::Tensor& x) { return x.transpose(1, 2).contiguous().transpose(1, 2); };
  const Inputs nc{strided(in.q), strided(in.k), strided(in.v)};
  ASSERT_FALSE(nc.q.is_contiguous());
  const at::Tensor grad_out = strided(randn({s.B, s.N, s.H, s.D}, at::kDouble, 68));
  const FwdBwd a = run_attention(in, s.cfg(), grad_out.contiguous());
  const FwdBwd b = run_attention(nc, s.cfg(), grad_out);
  EXPECT_LE(rel_err(b.o, a.o), 1e-14);
  EXPECT_LE(rel_err(b.dq, a.dq), 1e-14);
  EXPECT_LE(rel_err(b.dk, a.dk), 1e-14);
  EXPECT_LE(rel_err(b.dv, a.dv), 1e-14);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Determinism, ::testing::ValuesIn(oracle_shapes()),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

}  // namespace
}  // namespace lighthouse::test
