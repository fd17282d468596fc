// Ring attention over 2 and 4 in-process Gloo ranks equals dense causal SDPA on the whole
// sequence (output and q, k, v gradients), and the CP layout round-trips.
#include <gtest/gtest.h>

#include <mutex>

#include "dist/cp_layout.h"
#include "dist/ring_attention.h"
#include "dist/ranks.h"

namespace lighthouse::dist {
namespace {

TEST(CpLayout, ShardUnshardRoundTripsAndPositionsAreGlobal) {
  const at::Tensor x = torch::randn({2, 24, 3});
  for (const int W : {1, 2, 3}) {
    std::vector<at::Tensor> parts;
    for (int r = 0; r < W; ++r) {
      parts.push_back(cp_shard(x, 1, r, W));
      const int64_t n = 24 / (2 * W);
      const at::Tensor pos = cp_positions(n, r, W, torch::kCPU);  // [2n]
      EXPECT_TRUE(torch::equal(parts.back(), x.index_select(1, pos))) << W << " " << r;
      EXPECT_EQ(pos[0].item<int64_t>(), r * n);
      EXPECT_EQ(pos[n].item<int64_t>(), (2 * W - 1 - r) * n);
    }
    EXPECT_TRUE(torch::equal(cp_unshard(parts, 1), x));
  }
  EXPECT_THROW(cp_shard(x, 1, 0, 5), c10::ValueError);  // 24 is not a multiple of 10
}

// Dense causal attention [B, N, H, D] with GQA through stock SDPA: the reference.
at::Tensor dense(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const int64_t g = q.size(2) / k.size(2);
  return at::scaled_dot_product_attention(q.transpose(1, 2),
                                          k.transpose(1, 2).repeat_interleave(g, 1),
                                          v.transpose(1, 2).repeat_interleave(g, 1), {}, 0.0,
                                          true)
      .transpose(1, 2);
}

void check_ring(int W, at::ScalarType dtype, double tol) {
  at::manual_seed(100 + W);
  const int64_t B = 2, N = 2 * W * 6, H = 4, Hkv = 2, D = 8;
  const auto opts = torch::TensorOptions().dtype(dtype);
  const at::Tensor q = torch::randn({B, N, H, D}, opts), k = torch::randn({B, N, Hkv, D}, opts),
                   v = torch::randn({B, N, Hkv, D}, opts), dout = torch::randn({B, N, H, D}, opts);
  const at::Tensor qr = q.clone().requires_grad_(), kr = k.clone().requires_grad_(),
                   vr = v.clone().requires_grad_();
  const at::Tensor ref = dense(qr, kr, vr);
  ref.backward(dout);

  std::vector<at::Tensor> o(W), dq(W), dk(W), dv(W);
  run_ranks(W, [&](Group& g) {
    const int r = g.rank();
    at::Tensor ql = cp_shard(q, 1, r, W).requires_grad_(), kl = cp_shard(k, 1, r, W).requires_grad_(),
               vl = cp_shard(v, 1, r, W).requires_grad_();
    at::Tensor ol = ring_dense_attention(g, ql, kl, vl);  // [B, 2n, H, D]
    ol.backward(cp_shard(dout, 1, r, W));
    o[r] = ol.detach();
    dq[r] = ql.grad();
    dk[r] = kl.grad();
    dv[r] = vl.grad();
  });
  EXPECT_LE(rel_err(cp_unshard(o, 1), ref.detach()), tol) << W << " ranks: output";
  EXPECT_LE(rel_err(cp_unshard(dq, 1), qr.grad()), tol) << W << " ranks: dq";
  EXPECT_LE(rel_err(cp_unshard(dk, 1), kr.grad()), tol) << W << " ranks: dk";
  EXPECT_LE(rel_err(cp_unshard(dv, 1), vr.grad()), tol) << W << " ranks: dv";
}

TEST(RingAttention, TwoRanksEqualDenseCausalSdpa) {
  check_ring(2, at::kFloat, 1e-5);
  check_ring(2, at::kDouble, 1e-12);
}

TEST(RingAttention, FourRanksEqualDenseCausalSdpa) {
  check_ring(4, at::kFloat, 1e-5);
  check_ring(4, at::kDouble, 1e-12);
}

TEST(RingAttention, OneRankIsCausalSdpa) { check_ring(1, at::kDouble, 1e-12); }

TEST(RingAttention, BadShapesNameTheArgument) {
  run_ranks(1, [&](Group& g) {
    const at::Tensor q = torch::randn({1, 2, 6, 4});
    try {
      ring_attention(g, q, torch::randn({1, 2, 4, 4}), q);
      FAIL() << "no error";
    } catch (const c10::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("k and v must have q's shape"), std::string::npos);
    }
    EXPECT_THROW(ring_attention(g, torch::randn({1, 2, 5, 4}), torch::randn({1, 2, 5, 4}),
                                torch::randn({1, 2, 5, 4})),
                 c10::ValueError);
  });
}

}  // namespace
}  // namespace lighthouse::dist
