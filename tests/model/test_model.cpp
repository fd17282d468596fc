// The Llama model: shapes, Hugging Face parameter names, deterministic init, per-layer
// attention mode (a switch touches no parameter), dense layers, activation checkpointing,
// GQA, causality, RoPE and configuration errors.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include "model/autocast.h"
#include "model/flops.h"
#include "model/layers.h"
#include "model/tiny.h"

namespace lighthouse::model {
namespace {

using testing::kTinyN;
using testing::make_model;
using testing::random_tokens;
using testing::snapshot;
using testing::tiny_config;

at::Tensor loss_of(Llama& model, const at::Tensor& tokens) {
  at::Tensor logits = model(tokens);  // [B, N, V]
  return torch::nn::functional::cross_entropy(logits.flatten(0, 1), tokens.roll(-1, 1).flatten());
}

TEST(Llama, ForwardShapes) {
  Llama model = make_model(tiny_config());
  at::Tensor logits = model(random_tokens(2, kTinyN));  // [B, N, V]
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, kTinyN, kVocab}));
  EXPECT_EQ(logits.scalar_type(), at::kFloat);
  EXPECT_TRUE(logits.isfinite().all().item<bool>());
  at::Tensor logits32 = model(random_tokens(2, kTinyN).to(at::kInt));  // [B, N, V]
  EXPECT_TRUE(torch::equal(logits32, logits));
}

TEST(Llama, HuggingFaceParameterNames) {
  const ModelConfig cfg = tiny_config();
  Llama model = make_model(cfg);
  const auto params = model->named_parameters();
  EXPECT_EQ(params.size(), static_cast<size_t>(3 + 9 * cfg.n_layers));
  const int64_t H = cfg.n_heads, Hkv = cfg.n_kv_heads, D = cfg.head_dim, d = cfg.d_model;
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"embed_tokens.weight", {kVocab, d}},
      {"layers.0.self_attn.q_proj.weight", {H * D, d}},
      {"layers.0.self_attn.k_proj.weight", {Hkv * D, d}},
      {"layers.0.self_attn.v_proj.weight", {Hkv * D, d}},
      {"layers.0.self_attn.o_proj.weight", {d, H * D}},
      {"layers.4.mlp.gate_proj.weight", {cfg.ffn_hidden, d}},
      {"layers.4.mlp.up_proj.weight", {cfg.ffn_hidden, d}},
      {"layers.4.mlp.down_proj.weight", {d, cfg.ffn_hidden}},
      {"layers.2.input_layernorm.weight", {d}},
      {"layers.2.post_attention_layernorm.weight", {d}},
      {"norm.weight", {d}},
      {"lm_head.weight", {kVocab, d}}};
  for (const auto& [name, shape] : expected) {
    const at::Tensor* p = params.find(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(p->sizes().vec(), shape) << name;
  }
}

TEST(Llama, InitIsSeededNormalAndOnes) {
  Llama a = make_model(tiny_config(), 3);
  Llama b = make_model(tiny_config(), 3);
  const auto pa = snapshot(a), pb = snapshot(b);
  for (const auto& [name, t] : pa) {
    EXPECT_TRUE(torch::equal(t, pb.at(name))) << name;
    if (t.dim() == 1) {
      EXPECT_TRUE(torch::equal(t, torch::ones_like(t))) << name;
    } else {
      EXPECT_NEAR(t.mean().item<double>(), 0.0, 0.005) << name;
      EXPECT_NEAR(t.std().item<double>(), 0.02, 0.003) << name;
    }
  }
}

TEST(Llama, ModeSwitchChangesOutputsNotParameters) {
  Llama model = make_model(tiny_config());
  const at::Tensor tokens = random_tokens(2, kTinyN);
  const auto before = snapshot(model);
  EXPECT_EQ(model->attention_mode(), AttentionMode::Dense);
  at::Tensor dense = model(tokens);  // [B, N, V]
  model->set_attention_mode(AttentionMode::Lighthouse);
  EXPECT_EQ(model->attention_mode(), AttentionMode::Lighthouse);
  at::Tensor lh = model(tokens);  // [B, N, V]
  EXPECT_GT((lh - dense).abs().max().item<double>(), 1e-4);
  model->set_attention_mode(AttentionMode::Dense);
  EXPECT_TRUE(torch::equal(model(tokens), dense));
  for (const auto& [name, t] : snapshot(model)) {
    EXPECT_TRUE(torch::equal(t, before.at(name))) << name << " changed across mode switches";
  }
}

TEST(Llama, DenseLayersIgnoreTheMode) {
  ModelConfig cfg = tiny_config();
  cfg.dense_layers = {0, 1, 2, 3, 4};
  Llama model = make_model(cfg);
  const at::Tensor tokens = random_tokens(1, kTinyN);
  at::Tensor dense = model(tokens);  // [B, N, V]
  model->set_attention_mode(AttentionMode::Lighthouse);
  EXPECT_TRUE(torch::equal(model(tokens), dense));
}

TEST(Llama, ResolvedDenseLayers) {
  ModelConfig cfg = tiny_config();
  EXPECT_EQ(resolved_dense_layers(cfg), (std::vector<int64_t>{0, 1, 3, 4}));
  cfg.n_layers = 30;
  EXPECT_EQ(resolved_dense_layers(cfg), (std::vector<int64_t>{0, 1, 28, 29}));
  cfg.n_layers = 3;
  EXPECT_EQ(resolved_dense_layers(cfg), (std::vector<int64_t>{0, 1, 2}));
  cfg.dense_layers = {2, 0, 2};
  EXPECT_EQ(resolved_dense_layers(cfg), (std::vector<int64_t>{0, 2}));
  cfg.dense_layers = std::vector<int64_t>{};  // none: every layer follows the mode
  EXPECT_TRUE(resolved_dense_layers(cfg).empty());
  cfg.dense_layers = std::nullopt;  // absent: the default
  EXPECT_EQ(resolved_dense_layers(cfg), default_dense_layers(3));
  cfg.dense_layers = {3};
  EXPECT_THROW(
      {
        try {
          resolved_dense_layers(cfg);
        } catch (const c10::Error& e) {
          EXPECT_NE(std::string(e.what()).find("dense_layers"), std::string::npos);
          throw;
        }
      },
      c10::Error);
}

// Checkpointed and plain runs give the same loss and gradients, in both attention modes, with
// every layer recomputed or only the dense-attention ones.
TEST(Llama, ActivationCheckpointingSameLossAndGradients) {
  for (const bool all_layers : {true, false})
  for (AttentionMode mode : {AttentionMode::Dense, AttentionMode::Lighthouse}) {
    SCOPED_TRACE(std::string("recompute_lighthouse_layers ") + (all_layers ? "true" : "false"));
    ModelConfig cfg = tiny_config();
    Llama plain = make_model(cfg);
    cfg.activation_checkpointing = true;
    cfg.recompute_lighthouse_layers = all_layers;
    Llama ckpt = make_model(cfg);
    plain->set_attention_mode(mode);
    ckpt->set_attention_mode(mode);
    const at::Tensor tokens = random_tokens(2, kTinyN);
    at::Tensor l1 = loss_of(plain, tokens);  // []
    at::Tensor l2 = loss_of(ckpt, tokens);   // []
    EXPECT_TRUE(torch::equal(l1, l2));
    l1.backward();
    l2.backward();
    const auto g1 = plain->named_parameters();
    for (const auto& p : ckpt->named_parameters()) {
      const at::Tensor& a = g1[p.key()].grad();
      const at::Tensor& b = p.value().grad();
      ASSERT_TRUE(a.defined() && b.defined()) << p.key();
      EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-7)) << p.key() << " max diff "
                                                     << (a - b).abs().max().item<double>();
    }
    torch::NoGradGuard no_grad;  // inference with checkpointing on runs the layers directly
    EXPECT_TRUE(torch::equal(ckpt(tokens), plain(tokens)));
  }
}

// The backward runs outside the autocast region: the recompute must replay the forward's
// autocast state (bf16 on CPU here), or it would compute in another dtype.
TEST(Llama, ActivationCheckpointingReplaysAutocast) {
  for (AttentionMode mode : {AttentionMode::Dense, AttentionMode::Lighthouse}) {
    ModelConfig cfg = tiny_config();
    Llama plain = make_model(cfg);
    cfg.activation_checkpointing = true;
    Llama ckpt = make_model(cfg);
    plain->set_attention_mode(mode);
    ckpt->set_attention_mode(mode);
    const at::Tensor tokens = random_tokens(2, kTinyN);  // [B, N]
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCPU, true);
    at::Tensor l1 = loss_of(plain, tokens);  // []
    at::Tensor l2 = loss_of(ckpt, tokens);   // []
    at::autocast::set_autocast_enabled(at::kCPU, false);
    at::autocast::clear_cache();
    EXPECT_TRUE(torch::equal(l1, l2));
    l1.backward();
    l2.backward();
    const auto g1 = plain->named_parameters();
    for (const auto& p : ckpt->named_parameters()) {
      const at::Tensor& a = g1[p.key()].grad();
      const at::Tensor& b = p.value().grad();
      ASSERT_TRUE(a.defined() && b.defined()) << p.key();
      EXPECT_EQ(b.scalar_type(), at::kFloat) << p.key();
      EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-7)) << p.key() << " max diff "
                                                     << (a - b).abs().max().item<double>();
    }
  }
}

// A GQA model equals the MHA model whose K/V projections repeat each KV head per group.
TEST(Llama, GqaEqualsRepeatedKvHeads) {
  ModelConfig gcfg = tiny_config();
  ModelConfig mcfg = gcfg;
  mcfg.n_kv_heads = mcfg.n_heads;
  Llama gqa = make_model(gcfg);
  Llama mha = make_model(mcfg, 99);
  const int64_t group = gcfg.n_heads / gcfg.n_kv_heads;
  {
    torch::NoGradGuard no_grad;
    const auto src = gqa->named_parameters();
    for (auto& p : mha->named_parameters()) {
      at::Tensor w = src[p.key()];  // [out, in] or [d]
      const std::string& n = p.key();
      if (n.find("k_proj") != std::string::npos || n.find("v_proj") != std::string::npos) {
        w = w.view({gcfg.n_kv_heads, gcfg.head_dim, gcfg.d_model})
                .repeat_interleave(group, 0)
                .reshape({mcfg.n_kv_heads * gcfg.head_dim, gcfg.d_model});
      }
      p.value().copy_(w);
    }
  }
  const at::Tensor tokens = random_tokens(2, kTinyN);
  for (AttentionMode mode : {AttentionMode::Dense, AttentionMode::Lighthouse}) {
    gqa->set_attention_mode(mode);
    mha->set_attention_mode(mode);
    at::Tensor a = gqa(tokens);  // [B, N, V]
    at::Tensor b = mha(tokens);  // [B, N, V]
    EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6)) << "max diff " << (a - b).abs().max();
  }
}

TEST(Llama, DenseModelIsCausal) {
  Llama model = make_model(tiny_config());
  at::Tensor a = random_tokens(2, kTinyN, 1);  // [B, N]
  at::Tensor b = a.clone();                     // [B, N]
  const int64_t t = 20;
  b.narrow(1, t + 1, kTinyN - t - 1).copy_(random_tokens(2, kTinyN - t - 1, 2));
  at::Tensor la = model(a);  // [B, N, V]
  at::Tensor lb = model(b);  // [B, N, V]
  EXPECT_TRUE(torch::allclose(la.narrow(1, 0, t + 1), lb.narrow(1, 0, t + 1), 1e-5, 1e-6));
  EXPECT_GT((la.narrow(1, t + 1, kTinyN - t - 1) - lb.narrow(1, t + 1, kTinyN - t - 1))
                .abs()
                .max()
                .item<double>(),
            1e-4);
}

// RoPE rotates the pairs (j, j + D/2) by t * theta^(-2j/D): position 0 is the identity and
// every pair keeps its norm.
TEST(Rope, RotatesHalfPairs) {
  const int64_t D = 8, N = 6;
  RopeCache cache(D, 10000.0);
  RopeTables rope = cache.get(N, torch::kCPU, at::kDouble);
  torch::manual_seed(0);
  at::Tensor x = torch::randn({1, N, 2, D}, torch::kDouble);  // [B, N, H, D]
  at::Tensor y = apply_rope(x, rope);                           // [B, N, H, D]
  EXPECT_TRUE(torch::allclose(y.select(1, 0), x.select(1, 0)));
  auto pair_norm = [D](const at::Tensor& v) {
    return v.narrow(-1, 0, D / 2).square() + v.narrow(-1, D / 2, D / 2).square();
  };
  EXPECT_TRUE(torch::allclose(pair_norm(y), pair_norm(x)));
  const double angle = 3 * std::pow(10000.0, -2.0 / D);  // t = 3, j = 1
  const double x1 = x[0][3][1][1].item<double>(), x2 = x[0][3][1][1 + D / 2].item<double>();
  EXPECT_NEAR(y[0][3][1][1].item<double>(), x1 * std::cos(angle) - x2 * std::sin(angle), 1e-6);
  EXPECT_NEAR(y[0][3][1][1 + D / 2].item<double>(), x2 * std::cos(angle) + x1 * std::sin(angle),
              1e-6);
}

// The custom backward equals autograd's of the plain rotate_half formula.
TEST(Rope, GradientMatchesAutograd) {
  const int64_t D = 8, N = 5;
  RopeCache cache(D, 10000.0);
  RopeTables rope = cache.get(N, torch::kCPU, at::kDouble);
  torch::manual_seed(1);
  at::Tensor x = torch::randn({2, N, 3, D}, torch::kDouble).requires_grad_(true);  // [B, N, H, D]
  at::Tensor g = torch::randn({2, N, 3, D}, torch::kDouble);                      // [B, N, H, D]
  at::Tensor dx = torch::autograd::grad({apply_rope(x, rope)}, {x}, {g})[0];      // [B, N, H, D]
  at::Tensor x1 = x.narrow(-1, 0, D / 2), x2 = x.narrow(-1, D / 2, D / 2);
  at::Tensor sin = rope.sin.narrow(-1, D / 2, D / 2).repeat({1, 1, 2});  // [N, 1, D] unsigned
  at::Tensor plain = x * rope.cos + at::cat({-x2, x1}, -1) * sin;       // [B, N, H, D]
  at::Tensor expected = torch::autograd::grad({plain}, {x}, {g})[0];     // [B, N, H, D]
  EXPECT_TRUE(torch::allclose(dx, expected, 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(apply_rope(x, rope), plain, 1e-12, 1e-12));
}

void expect_error(const ModelConfig& cfg, const std::string& needle) {
  try {
    Llama model(cfg);
    ADD_FAILURE() << "expected an error naming " << needle;
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Llama, RejectsBadConfigNamingTheParameter) {
  ModelConfig cfg = tiny_config();
  cfg.n_kv_heads = 3;
  expect_error(cfg, "model.n_kv_heads");
  cfg = tiny_config();
  cfg.head_dim = 7;
  expect_error(cfg, "model.head_dim");
  cfg = tiny_config();
  cfg.vocab = 0;  // any tokenizer: every positive vocabulary is valid
  expect_error(cfg, "model.vocab");
  cfg = tiny_config();
  cfg.dense_layers = {-1};
  expect_error(cfg, "model.dense_layers");
  cfg = tiny_config();
  cfg.lighthouse.pool = 3;
  expect_error(cfg, "pool");

  Llama model = make_model(tiny_config());
  EXPECT_THROW(model(torch::zeros({kTinyN}, torch::kLong)), c10::Error);
  EXPECT_THROW(model(torch::zeros({1, kTinyN}, torch::kFloat)), c10::Error);
}

// The one autocast scope sets a device type's state for its lifetime and restores it; the
// bool form (training, evaluation) changes nothing when off.
TEST(AutocastScope, SetsAndRestoresTheDeviceState) {
  ASSERT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  const at::ScalarType cpu_dtype = at::autocast::get_autocast_dtype(at::kCPU);
  const bool cache = at::autocast::is_autocast_cache_enabled();
  {
    AutocastScope scope(at::kCPU, true, at::kBFloat16, /*weight_cache=*/false);
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
    EXPECT_EQ(at::autocast::get_autocast_dtype(at::kCPU), at::kBFloat16);
    EXPECT_FALSE(at::autocast::is_autocast_cache_enabled());
    {
      AutocastScope off(at::kCPU, false, at::kFloat, /*weight_cache=*/true);
      EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
    }
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  EXPECT_EQ(at::autocast::get_autocast_dtype(at::kCPU), cpu_dtype);
  EXPECT_EQ(at::autocast::is_autocast_cache_enabled(), cache);
  const bool cuda = at::autocast::is_autocast_enabled(at::kCUDA);
  {
    AutocastScope none(/*cuda_bf16=*/false);
    EXPECT_EQ(at::autocast::is_autocast_enabled(at::kCUDA), cuda);
  }
  {
    AutocastScope bf16(/*cuda_bf16=*/true);
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCUDA));
    EXPECT_EQ(at::autocast::get_autocast_dtype(at::kCUDA), at::kBFloat16);
  }
  EXPECT_EQ(at::autocast::is_autocast_enabled(at::kCUDA), cuda);
}

// The weight products of a step are 6 N FLOPs per weight-matrix parameter (embeddings are
// lookups, norms elementwise); attention counts n (n + 1) / 2 query-key pairs per head, with
// Lighthouse layers on their S slots (tiny_config: S = 24 at N = 32) and dense layers on N.
TEST(Llama, StepFlopsCountsEveryWeightAndAttentionPair) {
  const ModelConfig cfg = tiny_config();
  Llama model = make_model(cfg);
  double matrix_params = 0;
  for (const auto& p : model->named_parameters())
    if (p.value().dim() == 2 && p.key().find("embed_tokens") == std::string::npos)
      matrix_params += static_cast<double>(p.value().numel());
  const int64_t n = kTinyN;
  const StepFlops dense = step_flops(cfg, n, AttentionMode::Dense);
  EXPECT_DOUBLE_EQ(dense.gemm, 6.0 * n * matrix_params);
  const double pair = 4.0 * cfg.head_dim * cfg.n_heads;  // Q.K and P.V of one pair, all heads
  EXPECT_DOUBLE_EQ(dense.attention, 3.5 * cfg.n_layers * pair * n * (n + 1) / 2);
  EXPECT_EQ(dense.scorer, 0);
  const StepFlops lh = step_flops(cfg, n, AttentionMode::Lighthouse);
  const int64_t dense_layers = static_cast<int64_t>(resolved_dense_layers(cfg).size());
  const int64_t S = 24;
  EXPECT_DOUBLE_EQ(lh.gemm, dense.gemm);
  EXPECT_DOUBLE_EQ(lh.attention, 3.5 * pair *
                                     (dense_layers * n * (n + 1) / 2.0 +
                                      (cfg.n_layers - dense_layers) * S * (S + 1) / 2.0));
  ModelConfig dil = cfg;
  dil.lighthouse.scorer = Scorer::Dilated;
  dil.lighthouse.dilation = 4;  // 4 sub-sequences of 8 positions, Q.K and K.Q
  EXPECT_DOUBLE_EQ(step_flops(dil, n, AttentionMode::Lighthouse).scorer,
                   (cfg.n_layers - dense_layers) * 2.0 * 4 * pair * 8 * 9 / 2.0);
}

}  // namespace
}  // namespace lighthouse::model
