// lighthouse.combine: the scatter's fan-in per position (SPEC.md §6) and the "mean" Lighthouse
// layer, which divides the op's summed output by it, so that every output is a convex
// combination of values as in dense attention (docs/stability.md).
#include <gtest/gtest.h>

#include "model/layers.h"
#include "model/tiny.h"

namespace lighthouse::model {
namespace {

// N = 512, L = 3, p = 4, k = 16, m = 8: T = 2 tiles, C = 16, S = 32 + 2 * 64 = 160.
Config op_config() {
  Config c;
  c.levels = 3;
  c.pool = 4;
  c.topk = 16;
  c.tile_topk = 8;
  return c;
}
constexpr int64_t kN = 512;

TEST(Combine, FanInCountsTheEmittedLevelsOfSpec6) {
  torch::manual_seed(3);
  const at::Tensor q = torch::randn({2, kN, 4, 8});  // [B, N, H, D]
  const at::Tensor k = torch::randn({2, kN, 2, 8});  // [B, N, Hkv, D]
  const Config cfg = op_config();
  const Plan plan = lighthouse::plan(q, k, cfg);
  const at::Tensor count = scatter_fan_in(plan, cfg, kN);  // [B, N, H]
  ASSERT_EQ(count.sizes(), (std::vector<int64_t>{2, kN, 4}));
  Geometry g;
  std::string err;
  ASSERT_TRUE(make_geometry(cfg, kN, &g, &err)) << err;
  const auto inv = plan.inverse.accessor<int64_t, 3>();  // [B, H, P]
  const auto got = count.accessor<int64_t, 3>();
  std::vector<int64_t> histogram(g.L + 1, 0);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t t = 0; t < kN; ++t) {
        int64_t want = 0;
        for (int64_t l = 0; l < g.L; ++l) {
          const int64_t i = (t + 1) / g.window[l] - 1;
          if (i >= 0 && inv[b][h][g.level_offset[l] + i] >= 0) ++want;
        }
        ASSERT_EQ(got[b][t][h], want) << "b " << b << " h " << h << " t " << t;
        ++histogram[want];
      }
  // Every level is used: some positions get all L contributions, most get the coarsest.
  EXPECT_GT(histogram[3], 0);
  EXPECT_GT(histogram[2], 0);
  EXPECT_GT(histogram[1], histogram[3]);
}

// A ragged N (SPEC.md §2: a last shorter tile and a tail of 7): the fan-in counts only
// entries that exist (none past the pyramid's prefix) and were emitted.
TEST(Combine, FanInOnARaggedLength) {
  torch::manual_seed(5);
  const int64_t n = 519;
  const at::Tensor q = torch::randn({1, n, 2, 8});  // [B, N, H, D]
  const at::Tensor k = torch::randn({1, n, 1, 8});  // [B, N, Hkv, D]
  const Config cfg = op_config();
  const Plan plan = lighthouse::plan(q, k, cfg);
  const at::Tensor count = scatter_fan_in(plan, cfg, n);  // [B, N, H]
  Geometry g;
  std::string err;
  ASSERT_TRUE(make_geometry(cfg, n, &g, &err)) << err;
  ASSERT_EQ(g.tail, 7);
  const auto inv = plan.inverse.accessor<int64_t, 3>();  // [B, H, P]
  const auto got = count.accessor<int64_t, 3>();
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t t = 0; t < n; ++t) {
      int64_t want = 0;
      for (int64_t l = 0; l < g.L; ++l) {
        const int64_t i = (t + 1) / g.window[l] - 1;
        if (i >= 0 && i < g.level_len[l] && inv[0][h][g.level_offset[l] + i] >= 0) ++want;
      }
      ASSERT_EQ(got[0][t][h], want) << "h " << h << " t " << t;
    }
  // The last token: its own level-0 slot and the last coarsest entry (R = [511, 526]); level 1
  // would be entry 128, past the pyramid's 128 entries.
  EXPECT_EQ(got[0][n - 1][0], 2);
}

TEST(Combine, SumScalesConstantValuesByFanInMeanKeepsThem) {
  torch::manual_seed(4);
  const Config cfg = op_config();
  const at::Tensor q = torch::randn({1, kN, 2, 8}, torch::kDouble);
  const at::Tensor k = torch::randn({1, kN, 1, 8}, torch::kDouble);
  const at::Tensor v = torch::randn({1, 1, 1, 8}, torch::kDouble).expand({1, kN, 1, 8});
  const Plan plan = lighthouse::plan(q, k, cfg);
  const at::Tensor o = lighthouse::attention(q, k, v, plan, cfg);    // [1, N, 2, 8]
  const at::Tensor count = scatter_fan_in(plan, cfg, kN).unsqueeze(-1).to(at::kDouble);
  const at::Tensor dense = lighthouse::dense_attention(q, k, v);     // every row == v
  EXPECT_TRUE(torch::allclose(dense, v.expand_as(dense), 1e-12, 1e-12));
  // The published scatter sums one softmax row per contributing level: fan-in x v.
  EXPECT_TRUE(torch::allclose(o, count * v.expand_as(o), 1e-12, 1e-12));
  const at::Tensor covered = count.squeeze(-1).gt(0);  // [1, N, 2]
  const at::Tensor mean = o / count.clamp_min(1);
  EXPECT_TRUE(torch::allclose(mean.index({covered}), v.expand_as(o).index({covered}), 1e-12,
                              1e-12));
  EXPECT_GT(count.max().item<double>(), 1.0);  // the sum really differs somewhere
}

TEST(Combine, MeanLayerDividesTheOpOutputByTheFanIn) {
  ModelConfig cfg = testing::tiny_config();
  cfg.lighthouse = op_config();
  cfg.lighthouse_combine = LighthouseCombine::Mean;
  torch::manual_seed(5);
  Attention mean_attn(cfg);
  cfg.lighthouse_combine = LighthouseCombine::Sum;
  Attention sum_attn(cfg);
  {
    torch::NoGradGuard ng;
    for (auto& kv : sum_attn->named_parameters())
      kv.value().copy_(mean_attn->named_parameters()[kv.key()]);
  }
  RopeCache cache(cfg.head_dim, cfg.rope_theta);
  const RopeTables rope = cache.get(kN, torch::kCPU, at::kFloat);
  const at::Tensor x = torch::randn({2, kN, cfg.d_model});  // [B, N, d_model]
  torch::NoGradGuard ng;
  const at::Tensor y_mean = mean_attn->forward(x, rope, /*lighthouse=*/true);
  const at::Tensor y_sum = sum_attn->forward(x, rope, /*lighthouse=*/true);
  // Rebuild the mean layer from the op: o_proj(attention(q, k, v) / fan-in).
  const int64_t B = 2, H = cfg.n_heads, Hkv = cfg.n_kv_heads, D = cfg.head_dim;
  const at::Tensor q = apply_rope(mean_attn->q_proj(x).view({B, kN, H, D}), rope);
  const at::Tensor k = apply_rope(mean_attn->k_proj(x).view({B, kN, Hkv, D}), rope);
  const at::Tensor v = mean_attn->v_proj(x).view({B, kN, Hkv, D});
  const Plan plan = lighthouse::plan(q, k, cfg.lighthouse);
  const at::Tensor count = scatter_fan_in(plan, cfg.lighthouse, kN).clamp_min(1).unsqueeze(-1);
  const at::Tensor o = lighthouse::attention(q, k, v, plan, cfg.lighthouse);
  EXPECT_TRUE(torch::allclose(y_mean, mean_attn->o_proj((o / count).reshape({B, kN, H * D})),
                              1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(y_sum, mean_attn->o_proj(o.reshape({B, kN, H * D})), 1e-5, 1e-6));
  EXPECT_GT((y_sum - y_mean).abs().max().item<double>(), 1e-3);
  // Dense mode is the same function under either combine.
  EXPECT_TRUE(torch::equal(mean_attn->forward(x, rope, false), sum_attn->forward(x, rope, false)));
}

// lighthouse.scorer = "dilated": both layer kinds select from the dilated scores of their own
// q, k and v (the mean layer passes v to plan), and the selection differs from the norm one.
TEST(Combine, DilatedScorerReachesBothLayers) {
  ModelConfig cfg = testing::tiny_config();
  cfg.lighthouse = op_config();
  cfg.lighthouse.scorer = Scorer::Dilated;
  cfg.lighthouse.dilation = 4;
  cfg.lighthouse_combine = LighthouseCombine::Mean;
  torch::manual_seed(6);
  Attention attn(cfg);
  RopeCache cache(cfg.head_dim, cfg.rope_theta);
  const RopeTables rope = cache.get(kN, torch::kCPU, at::kFloat);
  const at::Tensor x = torch::randn({2, kN, cfg.d_model});  // [B, N, d_model]
  torch::NoGradGuard ng;
  const int64_t B = 2, H = cfg.n_heads, Hkv = cfg.n_kv_heads, D = cfg.head_dim;
  const at::Tensor q = apply_rope(attn->q_proj(x).view({B, kN, H, D}), rope);
  const at::Tensor k = apply_rope(attn->k_proj(x).view({B, kN, Hkv, D}), rope);
  const at::Tensor v = attn->v_proj(x).view({B, kN, Hkv, D});
  const Plan plan = lighthouse::plan(q, k, v, cfg.lighthouse);
  EXPECT_FALSE(torch::equal(plan.slots, lighthouse::plan(q, k, op_config()).slots));
  const at::Tensor o = lighthouse::attention(q, k, v, plan, cfg.lighthouse);  // [B, N, H, D]
  const at::Tensor count = scatter_fan_in(plan, cfg.lighthouse, kN).clamp_min(1).unsqueeze(-1);
  EXPECT_TRUE(torch::allclose(attn->forward(x, rope, true),
                              attn->o_proj((o / count).reshape({B, kN, H * D})), 1e-5, 1e-6));
  cfg.lighthouse_combine = LighthouseCombine::Sum;
  Attention sum_attn(cfg);
  for (auto& kv : sum_attn->named_parameters())
    kv.value().copy_(attn->named_parameters()[kv.key()]);
  EXPECT_TRUE(torch::allclose(sum_attn->forward(x, rope, true),
                              attn->o_proj(o.reshape({B, kN, H * D})), 1e-5, 1e-6));
}

}  // namespace
}  // namespace lighthouse::model
