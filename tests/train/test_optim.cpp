// Optimizer and schedule: warmup then cosine / linear / constant decay to the floor, AdamW
// groups (no decay on norms and the embedding unless configured), global-norm clipping, and
// gradient accumulation matching one large batch.
#include <gtest/gtest.h>

#include <cmath>

#include "train/adamw_parity.h"
#include "train/helpers.h"
#include "train/optim.h"
#include "train/trainer.h"

namespace lighthouse::train {
namespace {

using testing::test_config;

TEST(Schedule, WarmupThenDecayToTheFloor) {
  RunConfig c = test_config();
  c.optim.lr = 1.0;
  c.train.steps = 110;
  c.schedule.warmup_steps = 10;
  c.schedule.min_lr_factor = 0.1;
  EXPECT_DOUBLE_EQ(lr_at(c, 0), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(c, 4), 0.5);
  EXPECT_DOUBLE_EQ(lr_at(c, 9), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(c, 10), 1.0);     // decay starts after warmup
  EXPECT_NEAR(lr_at(c, 60), 0.55, 1e-12);  // cosine midpoint
  EXPECT_NEAR(lr_at(c, 110), 0.1, 1e-12);
  c.schedule.decay = "linear";
  EXPECT_NEAR(lr_at(c, 35), 1.0 - 0.9 * 0.25, 1e-12);
  EXPECT_NEAR(lr_at(c, 110), 0.1, 1e-12);
  c.schedule.decay = "constant";
  EXPECT_DOUBLE_EQ(lr_at(c, 100), 1.0);
  c.schedule.warmup_steps = 0;
  EXPECT_DOUBLE_EQ(lr_at(c, 0), 1.0);
}

// schedule.rewarmup_steps: from the switch the lr ramps back to the schedule linearly; dense
// runs and the steps before the switch are untouched.
TEST(Schedule, RewarmupRampsFromTheSwitch) {
  RunConfig c = test_config();
  c.optim.lr = 0.5;
  c.train.steps = 110;
  c.train.stage1_steps = 80;
  c.schedule.warmup_steps = 10;
  RunConfig plain = c;
  c.schedule.rewarmup_steps = 4;
  validate(c);
  for (const int64_t s : {0, 9, 50, 79, 84, 109}) EXPECT_DOUBLE_EQ(lr_at(c, s), lr_at(plain, s)) << s;
  for (int64_t j = 0; j < 4; ++j)
    EXPECT_DOUBLE_EQ(lr_at(c, 80 + j), lr_at(plain, 80 + j) * static_cast<double>(j + 1) / 4) << j;
  c.train.attention = model::AttentionMode::Dense;  // no switch in a dense run
  EXPECT_DOUBLE_EQ(lr_at(c, 80), lr_at(plain, 80));
  c.train.attention = model::AttentionMode::Lighthouse;
  c.schedule.rewarmup_steps = 31;
  try {
    validate(c);
    ADD_FAILURE() << "31 > train.steps - train.stage1_steps accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("schedule.rewarmup_steps: must be in [0, ", 0), 0u)
        << e.what();
  }
}

TEST(Optimizer, NoDecayOnNormsAndEmbeddingUnlessConfigured) {
  RunConfig c = test_config();
  model::Llama m(to_model_config(c));
  auto opt = make_optimizer(*m, c);
  ASSERT_EQ(opt->param_groups().size(), 2u);
  const auto in_group = [&](size_t g, const std::string& name) {
    const auto* p = m->named_parameters().find(name);
    for (const auto& q : opt->param_groups()[g].params())
      if (q.is_same(*p)) return true;
    return false;
  };
  EXPECT_TRUE(in_group(0, "layers.1.self_attn.q_proj.weight"));
  EXPECT_TRUE(in_group(0, "lm_head.weight"));
  EXPECT_TRUE(in_group(1, "embed_tokens.weight"));
  EXPECT_TRUE(in_group(1, "layers.0.input_layernorm.weight"));
  EXPECT_TRUE(in_group(1, "norm.weight"));
  const auto& o0 = static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[0].options());
  const auto& o1 = static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[1].options());
  EXPECT_EQ(o0.weight_decay(), c.optim.weight_decay);
  EXPECT_EQ(o1.weight_decay(), 0.0);
  EXPECT_EQ(std::get<1>(o0.betas()), c.optim.beta2);
  c.optim.decay_norms_and_embeddings = true;
  EXPECT_EQ(make_optimizer(*m, c)->param_groups().size(), 1u);
}

TEST(Optimizer, ClipsByGlobalNorm) {
  auto a = torch::zeros({2}, torch::requires_grad()), b = torch::zeros({1}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(clip_grad_norm({a, b}, 10.0), 5.0, 1e-6);
  EXPECT_NEAR(a.grad()[0].item<double>(), 3.0, 1e-6);  // under the limit: untouched
  EXPECT_NEAR(clip_grad_norm({a, b}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(std::hypot(a.grad()[0].item<double>(), b.grad()[0].item<double>()), 1.0, 1e-5);
}

// optim.fused's multi-tensor step equals torch's per-tensor AdamW (here ATen's CPU kernel; the
// trainer uses it on CUDA, tests/gpu/test_cuda_optim.cpp), and its state resumes in the loop.
TEST(Optimizer, FusedStepMatchesThePerTensorLoop) {
  const auto r = testing::adamw_fused_vs_loop(torch::kCPU);
  EXPECT_LT(r.params, 1e-6);
  EXPECT_LT(r.exp_avg, 1e-6);
  EXPECT_LT(r.exp_avg_sq, 1e-6);
  EXPECT_EQ(r.steps_fused, 3);
  EXPECT_EQ(r.steps_loop, 3);
}

TEST(Optimizer, AccumulationMatchesOneLargeBatch) {
  const std::string dir = testing::scratch_dir("accum");
  testing::write_file(dir + "/t.toml", testing::kTestToml);
  auto big =
      open_session({dir + "/t.toml", {{"train.batch_size", "2"}, {"train.grad_accum", "1"}}});
  auto acc =
      open_session({dir + "/t.toml", {{"train.batch_size", "1"}, {"train.grad_accum", "2"}}});
  for (int i = 0; i < 2; ++i) {
    const auto a = train_step(*big), b = train_step(*acc);
    EXPECT_NEAR(a.loss, b.loss, 1e-5);
    EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-4);
  }
  EXPECT_EQ(big->tokens, acc->tokens);
  EXPECT_EQ(big->train_loader->cursor(), acc->train_loader->cursor());
  for (size_t i = 0; i < big->params.size(); ++i)
    EXPECT_TRUE(torch::allclose(big->params[i], acc->params[i], 1e-4, 1e-5));
}

}  // namespace
}  // namespace lighthouse::train
