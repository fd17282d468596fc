// What a training run survives: SIGTERM / SIGINT (checkpoint, then a bitwise-exact resume; a
// second signal exits at once), non-finite steps (skipped without touching weights or AdamW
// state; train.max_skipped_steps in a row stop the run), and the inputs a new user gets wrong
// (a .gz that is not gzip, a finished run resumed, a renamed checkpoint, run.name, a model too
// large for memory, more validation batches than the split holds).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <thread>

#include "train/checkpoint.h"
#include "train/helpers.h"
#include "train/interrupt.h"
#include "train/trainer.h"

namespace lighthouse::train {
namespace {

using testing::CliResult;
using testing::run_cli;
using testing::scratch_dir;
using testing::step_losses;

class Robustness : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch_dir("rb");
    testing::write_file(dir_ + "/test.toml", testing::kTestToml);
  }
  std::vector<std::string> fresh(const std::string& run) const {
    return {"train", "--config", dir_ + "/test.toml", "--set", "run.dir=" + run};
  }
  static std::vector<std::string> resume(const std::string& run) {
    return {"train", "--set", "run.resume=" + run};
  }
  std::string dir_;
};

std::vector<std::string> plus_args(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void expect_error(const CliResult& r, const std::vector<std::string>& names) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("lighthouse: error: ", 0), 0u) << r.err;
  for (const auto& n : names) EXPECT_NE(r.err.find(n), std::string::npos) << r.err;
}

// Sends `sig` once the run's metrics hold `steps` steps; returns the finished process's result.
CliResult signal_after(const std::vector<std::string>& args, const std::string& run,
                       const std::string& dir, int sig, size_t steps) {
  const std::string out = dir + "/o.txt", err = dir + "/e.txt";
  const pid_t pid = testing::spawn_cli(args, out, err);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (step_losses(run).size() < steps && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ::kill(pid, sig);
  return testing::wait_cli(pid, out, err);
}

TEST_F(Robustness, SigtermAndSigintCheckpointThenResumeMatchesBitwise) {
  const std::vector<std::string> longer = {
      "--set", "train.steps=30", "--set", "train.stage1_steps=15", "--set", "val.every=10"};
  auto r = run_cli(dir_, plus_args(fresh(dir_ + "/reference"), longer));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto reference = step_losses(dir_ + "/reference");
  ASSERT_EQ(reference.size(), 30u);

  const std::string run = dir_ + "/stopped";
  r = signal_after(plus_args(fresh(run), longer), run, dir_, SIGTERM, 2);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM) << r.out << r.err;
  auto steps = step_losses(run);
  ASSERT_GE(steps.size(), 2u);
  ASSERT_LT(steps.size(), 30u) << "the run ended before the signal";
  int64_t at = steps.back().first;  // the step in progress was finished
  EXPECT_NE(r.out.find("stopped by SIGTERM after step " + std::to_string(at) + ": checkpoint " +
                       checkpoint_path(run, at)),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("SIGTERM: stopping after this step"), std::string::npos) << r.err;
  EXPECT_EQ(list_checkpoints(run).back(), checkpoint_path(run, at));

  r = signal_after(resume(run), run, dir_, SIGINT, steps.size() + 2);  // two new steps
  EXPECT_EQ(r.exit_code, 128 + SIGINT) << r.out << r.err;
  steps = step_losses(run);
  ASSERT_LT(steps.size(), 30u) << "the run ended before the signal";
  at = steps.back().first;
  EXPECT_NE(r.out.find("stopped by SIGINT after step " + std::to_string(at)), std::string::npos)
      << r.out;
  EXPECT_EQ(list_checkpoints(run).back(), checkpoint_path(run, at));

  r = run_cli(dir_, resume(run));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(step_losses(run), reference);
}

TEST(StopSignals, FirstSignalIsRecordedSecondExitsAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  {
    StopSignals stop;
    EXPECT_EQ(stop.pending(), 0);
    std::raise(SIGTERM);
    EXPECT_EQ(stop.pending(), SIGTERM);  // still running
  }
  EXPECT_EXIT(
      {
        StopSignals stop;
        std::raise(SIGINT);
        std::raise(SIGINT);
        std::_Exit(0);  // not reached
      },
      ::testing::ExitedWithCode(128 + SIGINT), "second signal: exiting now");
}

// All parameters and AdamW state (exp_avg, exp_avg_sq, step) of a session, cloned.
TensorMap state_of(Session& s) {
  TensorMap t;
  add_model(t, *s.model);
  add_optimizer(t, *s.model, *s.opt);
  for (auto& [k, v] : t) v = v.clone();
  return t;
}

bool bitwise_equal(const TensorMap& a, const TensorMap& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a)
    if (!b.count(k) || !torch::equal(v, b.at(k))) return false;
  return true;
}

TEST_F(Robustness, NonFiniteStepsLeaveWeightsAndOptimizerStateBitwiseUnchanged) {
  auto s = open_session({dir_ + "/test.toml", {{"run.dir", dir_ + "/run"}}});
  train_step(*s);
  train_step(*s);
  ::setenv("LIGHTHOUSE_FAULT_NONFINITE", "3:loss,4:grad", 1);
  const TensorMap before = state_of(*s);
  const uint64_t cursor = s->train_loader->cursor();
  const auto st3 = train_step(*s);
  EXPECT_EQ(st3.skipped, "loss");
  EXPECT_TRUE(std::isnan(st3.loss));
  EXPECT_TRUE(bitwise_equal(state_of(*s), before));
  const auto st4 = train_step(*s);
  EXPECT_EQ(st4.skipped, "grad norm");
  EXPECT_TRUE(std::isfinite(st4.loss));
  EXPECT_TRUE(std::isinf(st4.grad_norm));
  EXPECT_TRUE(bitwise_equal(state_of(*s), before));
  EXPECT_EQ(s->skipped_steps, 2);
  EXPECT_EQ(s->consecutive_skips, 2);
  EXPECT_EQ(s->step, 4);                         // the count moves on
  EXPECT_GT(s->train_loader->cursor(), cursor);  // so does the data
  const auto st5 = train_step(*s);
  ::unsetenv("LIGHTHOUSE_FAULT_NONFINITE");
  EXPECT_TRUE(st5.skipped.empty());
  EXPECT_FALSE(bitwise_equal(state_of(*s), before));
  EXPECT_EQ(s->consecutive_skips, 0);
  EXPECT_EQ(s->skipped_steps, 2);
}

TEST_F(Robustness, SkippedStepsAreLoggedAndTooManyInARowStopTheRun) {
  const std::string run = dir_ + "/skip";
  auto r = run_cli(dir_, fresh(run), {{"LIGHTHOUSE_FAULT_NONFINITE", "3:loss"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("step 3: skipped, loss is nan (weights and optimizer state unchanged"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("1 step(s) skipped"), std::string::npos) << r.out;
  const auto steps = step_losses(run);
  EXPECT_EQ(steps.size(), 7u);
  for (const auto& [step, loss] : steps) EXPECT_NE(step, 3);
  const std::string metrics = testing::read_file(run + "/metrics.jsonl");
  EXPECT_NE(
      metrics.find(
          R"({"attention":"lighthouse","grad_norm":"nan","in_a_row":1,"loss":"nan","quantity":"loss","skipped_steps":1,"step":3,"type":"skip"})"),
      std::string::npos)
      << metrics;

  r = run_cli(dir_, plus_args(fresh(dir_ + "/stop"), {"--set", "train.max_skipped_steps=2"}),
              {{"LIGHTHOUSE_FAULT_NONFINITE", "2:grad,4:grad,5:grad"}});
  expect_error(
      r, {"train: step 5: grad norm is inf", "2 steps in a row", "train.max_skipped_steps = 2"});
  EXPECT_NE(r.out.find("step 2: skipped, grad norm is inf"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("step 4: skipped, grad norm is inf"), std::string::npos) << r.out;
}

TEST_F(Robustness, GzipNamedFileThatIsNotGzipIsAnErrorNamingIt) {
  std::string noise(4096, '\0');
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 7919 + 13) % 251);
  testing::write_file(dir_ + "/corpus.txt.gz", noise);
  const auto r = run_cli(
      dir_, plus_args(fresh(dir_ + "/run"), {"--set", "data.source=" + dir_ + "/corpus.txt.gz"}));
  expect_error(r, {"data.source: " + dir_ + "/corpus.txt.gz is not gzip data"});
}

TEST_F(Robustness, ResumingAFinishedRunSaysItIsCompleteAndWritesNothing) {
  const std::string run = dir_ + "/done";
  auto r = run_cli(dir_, fresh(run));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli(dir_, plus_args(resume(run), {"--set", "run.dir=" + dir_ + "/elsewhere"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("run complete: " + checkpoint_path(run, 8) + " is step 8 of 8"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("done:"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("elsewhere"), std::string::npos) << r.out;  // no path that was not written
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/elsewhere"));
  r = run_cli(dir_,
              plus_args(resume(run), {"--set", "train.steps=10", "--set", "train.stop_at=8"}));
  expect_error(r, {"train.stop_at: must be after the checkpoint's step 8"});
}

TEST_F(Robustness, CheckpointWhoseNameDisagreesWithItsHeaderIsAnError) {
  const std::string run = dir_ + "/renamed";
  auto r = run_cli(dir_, fresh(run));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string fake = checkpoint_path(run, 25);
  std::filesystem::copy_file(checkpoint_path(run, 6), fake);
  r = run_cli(dir_, plus_args(resume(run), {"--set", "train.steps=30"}));
  expect_error(
      r, {"run.resume: checkpoint " + fake, "the file name says step 25, its header says step 6"});
  r = run_cli(dir_, {"export", "--checkpoint", fake, "--out", dir_ + "/hf"});
  expect_error(r, {"--checkpoint: checkpoint " + fake, "header says step 6"});
}

TEST(RunName, MustBeASafeNonEmptyName) {
  for (const std::string& bad : std::vector<std::string>{
           "", "../../x", "a/b", ".hidden", "-x", "has space", "x\\y", std::string(65, 'a')}) {
    RunConfig c;
    c.run.name = bad;
    try {
      validate(c);
      ADD_FAILURE() << "accepted run.name \"" << bad << "\"";
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("run.name: must be 1 to 64 characters", 0), 0u)
          << e.what();
    }
  }
  for (const std::string& good :
       std::vector<std::string>{"tiny", "my-run_2.1", "A", std::string(64, 'a')}) {
    RunConfig c;
    c.run.name = good;
    EXPECT_NO_THROW(validate(c)) << good;
  }
}

TEST_F(Robustness, RunNameOutsideTheRunsFolderIsRefused) {
  const auto r =
      run_cli(dir_, {"train", "--config", dir_ + "/test.toml", "--set", "run.name=../../x"});
  expect_error(r, {"run.name: must be", "\"../../x\""});
}

TEST_F(Robustness, ModelTooLargeForMemoryNamesTheKey) {
  const auto r =
      run_cli(dir_, plus_args(fresh(dir_ + "/run"), {"--set", "model.ffn_hidden=1000000000000"}));
  expect_error(r, {"model: cannot train the model here", "model.ffn_hidden = 1000000000000"});
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/run"));
}

TEST_F(Robustness, MoreValidationBatchesThanTheSplitHoldsIsAnError) {
  // The test config's split holds 6 sequences: 3 batches of 2 at most.
  auto r = run_cli(dir_, plus_args(fresh(dir_ + "/run"), {"--set", "val.batches=4"}));
  expect_error(r, {"val.batches: 4 batches of train.batch_size = 2 need 8 validation sequences",
                   "holds 6", "the maximum is val.batches = 3"});
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/run"));
  r = run_cli(dir_, plus_args(fresh(dir_ + "/run"),
                              {"--set", "val.batches=3", "--set", "train.steps=1", "--set",
                               "train.stage1_steps=1", "--set", "schedule.warmup_steps=1"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace lighthouse::train
