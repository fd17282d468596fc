// The trainer in process: the tiny model learns (loss far below ln 256), the stage switch
// touches no parameter or optimizer state, and stage 2 by resuming with attention = "dense"
// reproduces the one-run two-stage recipe bitwise.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "train/checkpoint.h"
#include "train/helpers.h"
#include "train/trainer.h"

namespace lighthouse::train {
namespace {

using testing::scratch_dir;
using testing::step_losses;

Launch test_launch(const std::string& dir,
                   std::vector<std::pair<std::string, std::string>> overrides) {
  testing::write_file(dir + "/test.toml", testing::kTestToml);
  overrides.emplace_back("run.dir", dir + "/run");
  return {dir + "/test.toml", overrides};
}

TensorMap state_of(Session& s) {
  TensorMap t;
  add_model(t, *s.model);
  add_optimizer(t, *s.model, *s.opt);
  for (auto& [k, v] : t) v = v.clone();
  return t;
}

TEST(Trainer, TinyModelLossFallsFarBelowLn256) {
  const std::string dir = scratch_dir("learn");
  auto s = open_session(test_launch(dir, {{"train.steps", "60"},
                                          {"train.stage1_steps", "45"},
                                          {"schedule.warmup_steps", "5"},
                                          {"data.builtin_docs", "150"},
                                          {"optim.lr", "2e-2"},
                                          {"train.batch_size", "4"}}));
  std::vector<double> losses;
  while (s->step < s->cfg.train.steps) losses.push_back(train_step(*s).loss);
  const double ln256 = std::log(256.0);
  EXPECT_NEAR(losses.front(), std::log(259.0), 0.3);  // starts at chance
  double last5 = 0;
  for (size_t i = losses.size() - 5; i < losses.size(); ++i) last5 += losses[i] / 5;
  EXPECT_LT(last5, ln256 - 2.5) << "mean loss of the last 5 steps: " << last5;
  EXPECT_LT(validation_loss(*s), ln256 - 2.5);
}

TEST(Trainer, StageSwitchLeavesWeightsAndOptimizerStateBitwiseUnchanged) {
  const std::string dir = scratch_dir("switch");
  auto s = open_session(test_launch(dir, {}));
  for (int i = 0; i < 3; ++i) train_step(*s, model::AttentionMode::Lighthouse);
  const auto tokens = s->train_loader->batch_at(0, 2).narrow(1, 0, 256);  // [B, N]
  torch::NoGradGuard ng;
  const auto lighthouse_logits = s->model->forward(tokens);  // [B, N, V]
  const TensorMap before = state_of(*s);
  s->model->set_attention_mode(model::AttentionMode::Dense);
  const TensorMap after = state_of(*s);
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [k, v] : before) EXPECT_TRUE(torch::equal(v, after.at(k))) << k;
  EXPECT_FALSE(torch::equal(s->model->forward(tokens), lighthouse_logits));  // the mode matters
  s->model->set_attention_mode(model::AttentionMode::Lighthouse);
  EXPECT_TRUE(torch::equal(s->model->forward(tokens), lighthouse_logits));
}

// val.every = 4 in an 8-step run with stage1_steps = 5: step 4 is stage 1 (dense and
// Lighthouse records, dense first), step 8 is stage 2 (dense only).
TEST(Trainer, ValidationRecordsDenseAndLighthouseModesInStage1) {
  const std::string dir = scratch_dir("val");
  {
    auto s = open_session(test_launch(dir, {}));
    const auto r = train(*s);
    EXPECT_GT(r.final_val_loss, 0);
  }
  std::vector<nlohmann::json> vals;
  std::ifstream in(dir + "/run/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "val") vals.push_back(j);
  }
  ASSERT_EQ(vals.size(), 3u);
  EXPECT_EQ(vals[0]["step"], 4);
  EXPECT_EQ(vals[0]["mode"], "dense");
  EXPECT_EQ(vals[1]["step"], 4);
  EXPECT_EQ(vals[1]["mode"], "lighthouse");
  EXPECT_EQ(vals[2]["step"], 8);
  EXPECT_EQ(vals[2]["mode"], "dense");
  for (const auto& v : vals) {
    EXPECT_EQ(v["tokens"], 1 * 2 * 256);
    EXPECT_GT(v["loss"].get<double>(), 0.5);
    EXPECT_FALSE(v.contains("val_loss"));
  }
  // Same weights, same batches: the two modes differ only by the attention.
  EXPECT_NE(vals[0]["loss"].get<double>(), vals[1]["loss"].get<double>());
}

TEST(Trainer, DenseResumeEqualsTheOneRunRecipe) {
  const std::string one = scratch_dir("one"), two = scratch_dir("two");
  {  // one run: Lighthouse for 5 steps, then dense
    auto s = open_session(test_launch(one, {}));
    train(*s);
  }
  {  // Lighthouse throughout, stopped after step 5 ...
    auto s = open_session(test_launch(two, {{"train.stage1_steps", "8"}, {"train.stop_at", "5"}}));
    train(*s);
  }
  {  // ... and resumed with attention = "dense"
    auto s = open_session({"", {{"run.resume", two + "/run"}, {"train.attention", "dense"}}});
    EXPECT_EQ(s->step, 5);
    EXPECT_EQ(s->saved_mode, "lighthouse");
    train(*s);
  }
  const auto a = step_losses(one + "/run"), b = step_losses(two + "/run");
  ASSERT_EQ(a.size(), 8u);
  EXPECT_EQ(a, b);  // bitwise: same weights, optimizer state, schedule and data order
  std::ifstream in(two + "/run/metrics.jsonl");
  std::string line;
  int switches = 0;
  while (std::getline(in, line)) switches += line.find("\"attention_switch\"") != std::string::npos;
  EXPECT_EQ(switches, 1);
}


// run.deterministic on the CPU: two runs of one config give bitwise equal losses and weights,
// and the mode is process-wide state the next session resets.
TEST(Trainer, DeterministicRunsAreBitwiseEqual) {
  const std::string a = scratch_dir("det-a"), b = scratch_dir("det-b");
  TensorMap wa, wb;
  for (const auto& [dir, w] : {std::pair{a, &wa}, std::pair{b, &wb}}) {
    auto s = open_session(test_launch(dir, {{"run.deterministic", "true"}}));
    EXPECT_TRUE(at::globalContext().deterministicAlgorithms());
    train(*s);
    *w = state_of(*s);
  }
  EXPECT_EQ(step_losses(a + "/run"), step_losses(b + "/run"));
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [k, v] : wa) EXPECT_TRUE(torch::equal(v, wb.at(k))) << k;
  auto s = open_session(test_launch(scratch_dir("det-off"), {}));
  EXPECT_FALSE(at::globalContext().deterministicAlgorithms());
}

// train.time_limit_s: the run stops after the step at which its summed step time reaches the
// limit, validates and checkpoints there, logs the event, and reports time_limited.
TEST(Trainer, TimeLimitStopsAfterTheStepThatReachesIt) {
  const std::string dir = scratch_dir("time-limit");
  auto s = open_session(test_launch(dir, {{"train.time_limit_s", "1e-9"}}));
  const auto r = train(*s);
  EXPECT_TRUE(r.time_limited);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(s->step, 1);
  EXPECT_GT(s->train_time_s, 0);
  EXPECT_GT(r.final_val_loss, 0);  // validated at the last step
  EXPECT_FALSE(list_checkpoints(dir + "/run").empty());
  const std::string metrics = testing::read_file(dir + "/run/metrics.jsonl");
  EXPECT_NE(metrics.find("\"event\":\"time_limit\""), std::string::npos) << metrics;
  auto resumed = open_session({"", {{"run.resume", dir + "/run"}}});
  EXPECT_DOUBLE_EQ(resumed->train_time_s, s->train_time_s);  // carried by the checkpoint
}

// The two runs of a compared pair (same seed, dense vs Lighthouse) draw the same batches at
// every step; another seed draws others.
TEST(Trainer, RunsOfOneSeedShareTheirBatches) {
  auto dense = open_session(test_launch(scratch_dir("pair-d"), {{"train.attention", "dense"}}));
  auto lh = open_session(test_launch(scratch_dir("pair-l"), {}));
  auto other = open_session(test_launch(scratch_dir("pair-o"), {{"run.seed", "1"}}));
  bool differs = false;
  for (int i = 0; i < 6; ++i) {
    const auto a = dense->train_loader->next_batch(2), b = lh->train_loader->next_batch(2);
    EXPECT_TRUE(torch::equal(a, b)) << "batch " << i;
    differs |= !torch::equal(a, other->train_loader->next_batch(2));
  }
  EXPECT_TRUE(differs);
}

// data.val_tokens fixes the held-out tokens: ceil(val_tokens / context) sequences.
TEST(Trainer, ValTokensHoldsOutWholeSequences) {
  auto s = open_session(test_launch(scratch_dir("val-tokens"), {{"data.val_tokens", "600"}}));
  EXPECT_EQ((s->data.val.size() - 1) / 256, 3);  // ceil(600 / 256)
}

}  // namespace
}  // namespace lighthouse::train
