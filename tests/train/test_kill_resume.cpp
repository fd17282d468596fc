// Crash safety through the `lighthouse` binary: SIGKILL at several points (before the first
// checkpoint, between checkpoints, in the middle of a checkpoint write, and at a random time
// from outside), then resume; the final loss sequence equals an uninterrupted run's, bitwise.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include "train/checkpoint.h"
#include "train/helpers.h"

namespace lighthouse::train {
namespace {

using testing::run_cli;
using testing::scratch_dir;
using testing::step_losses;

class KillResume : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch_dir("kr");
    testing::write_file(dir_ + "/test.toml", testing::kTestToml);
  }
  std::vector<std::string> fresh(const std::string& run) const {
    return {"train", "--config", dir_ + "/test.toml", "--set", "run.dir=" + run};
  }
  static std::vector<std::string> resume(const std::string& run) {
    return {"train", "--set", "run.resume=" + run};
  }
  std::vector<std::pair<int64_t, double>> uninterrupted() const {
    const std::string run = dir_ + "/reference";
    const auto r = run_cli(dir_, fresh(run));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return step_losses(run);
  }
  std::string dir_;
};

TEST_F(KillResume, KilledAtSeveralPointsThenResumedMatchesBitwise) {
  const auto reference = uninterrupted();
  ASSERT_EQ(reference.size(), 8u);
  const std::string run = dir_ + "/killed";

  // 1. After step 1, before any checkpoint: nothing to resume, start again in the same dir.
  auto r = run_cli(dir_, fresh(run), {{"LIGHTHOUSE_FAULT_KILL_AFTER_STEP", "1"}});
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_TRUE(list_checkpoints(run).empty());
  // 2. After step 3: checkpoint 2 exists, metrics already hold step 3.
  r = run_cli(dir_, fresh(run), {{"LIGHTHOUSE_FAULT_KILL_AFTER_STEP", "3"}});
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_EQ(list_checkpoints(run), (std::vector<std::string>{checkpoint_path(run, 2)}));
  EXPECT_EQ(step_losses(run).size(), 3u);
  // 3. Resume from 2, killed halfway through writing checkpoint 6.
  r = run_cli(dir_, resume(run), {{"LIGHTHOUSE_FAULT_CKPT_KILL", "6"}});
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_TRUE(std::filesystem::exists(checkpoint_path(run, 6) + ".tmp"));
  EXPECT_EQ(list_checkpoints(run).back(), checkpoint_path(run, 4));
  EXPECT_NO_THROW(read_checkpoint(checkpoint_path(run, 4)));  // the previous one is intact
  // 4. Resume from 4 and finish.
  r = run_cli(dir_, resume(run));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("resumed from " + checkpoint_path(run, 4)), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(checkpoint_path(run, 6) + ".tmp"));
  EXPECT_EQ(step_losses(run), reference);
  EXPECT_EQ(list_checkpoints(run).size(), 2u);  // checkpoint.keep = 2
}

TEST_F(KillResume, KilledFromOutsideAtRandomTimesThenResumedMatchesBitwise) {
  const auto reference = uninterrupted();
  const std::string run = dir_ + "/outside";
  const std::string out = dir_ + "/o.txt", err = dir_ + "/e.txt";
  auto args = fresh(run);
  for (int attempt = 0; attempt < 3; ++attempt) {
    // Start, wait until this attempt has logged two new steps, then kill at once.
    const size_t before = step_losses(run).size();
    const pid_t pid = testing::spawn_cli(args, out, err);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (step_losses(run).size() <= before + 1 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ::kill(pid, SIGKILL);
    testing::wait_cli(pid, out, err);
    if (!list_checkpoints(run).empty()) args = resume(run);
  }
  const auto r = run_cli(dir_, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(step_losses(run), reference);
}

TEST_F(KillResume, CorruptNewestCheckpointFallsBackToThePreviousOne) {
  const auto reference = uninterrupted();
  const std::string run = dir_ + "/corrupt";
  auto r = run_cli(dir_, fresh(run), {{"LIGHTHOUSE_FAULT_KILL_AFTER_STEP", "5"}});
  ASSERT_EQ(r.signal, SIGKILL);
  std::string bytes = testing::read_file(checkpoint_path(run, 4));
  bytes[bytes.size() - 1000] ^= 1;
  testing::write_file(checkpoint_path(run, 4), bytes);
  r = run_cli(dir_, resume(run));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(
      r.err.find(
          "step-00000004.ckpt is corrupted: checksum mismatch; trying the previous checkpoint"),
      std::string::npos)
      << r.err;
  EXPECT_EQ(step_losses(run), reference);
  r = run_cli(dir_, {"train", "--set", "run.resume=" + checkpoint_path(run, 8) + "x"});
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
}  // namespace lighthouse::train
