// The local launcher (--set dist.world_size=2, dist/launch.h) never outlives or hangs on its
// ranks: a stalled rank and a SIGSTOPped rank end the launch about dist.timeout_s after the
// other rank fails, and a launcher killed with SIGKILL takes its ranks with it.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "train/checkpoint.h"
#include "train/helpers.h"

namespace lighthouse::train {
namespace {

using Clock = std::chrono::steady_clock;
using testing::scratch_dir;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The pids whose parent is `parent` (from /proc/PID/stat).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    long long ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(static_cast<pid_t>(std::stoll(name)));
  }
  return out;
}

// Waits (up to `timeout_s`) for `pid`, a child of this process; false if it still runs.
bool wait_for(pid_t pid, double timeout_s, int* status) {
  const auto t0 = Clock::now();
  while (seconds_since(t0) < timeout_s) {
    if (::waitpid(pid, status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

class Launcher : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch_dir("launch");
    testing::write_file(dir_ + "/test.toml", testing::kTestToml);
  }
  // A 2-rank launch of the test config for many steps, in the background.
  pid_t start(const std::vector<std::string>& sets,
              const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> args = {"train",   "--config", dir_ + "/test.toml",
                                     "--set",   "run.dir=" + dir_ + "/run",
                                     "--set",   "dist.world_size=2",
                                     "--set",   "dist.timeout_s=2",
                                     "--set",   "train.steps=100000",
                                     "--set",   "val.every=0",
                                     "--set",   "checkpoint.every=1000"};
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    return testing::spawn_cli(args, dir_ + "/stdout.txt", dir_ + "/stderr.txt", env);
  }
  // Waits until the run has logged a step (both ranks are training) and returns the ranks.
  std::vector<pid_t> training_ranks(pid_t launcher) {
    const auto t0 = Clock::now();
    while (testing::step_losses(dir_ + "/run").empty() && seconds_since(t0) < 120)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(testing::step_losses(dir_ + "/run").empty()) << err();
    auto ranks = children_of(launcher);
    EXPECT_EQ(ranks.size(), 2u);
    return ranks;
  }
  std::string err() const { return testing::read_file(dir_ + "/stderr.txt"); }
  // Leaves nothing running when a test fails.
  static void kill_all(const std::vector<pid_t>& pids) {
    for (const pid_t p : pids) ::kill(p, SIGKILL);
    for (const pid_t p : pids) ::waitpid(p, nullptr, 0);
  }
  std::string dir_;
};

TEST_F(Launcher, AStalledRankEndsTheLaunchAboutTheTimeOutAfterItsPeerFails) {
  // Rank 1 sleeps 60 s before its first step; rank 0 fails its all-reduce after 2 s.
  const auto t0 = Clock::now();
  const pid_t launcher = start({}, {{"LIGHTHOUSE_FAULT_STALL_RANK", "1:60"}});
  int status = 0;
  const bool ended = wait_for(launcher, 40, &status);
  if (!ended) {
    kill_all(children_of(launcher));
    kill_all({launcher});
  }
  ASSERT_TRUE(ended) << "the launcher still runs after 40 s: " << err();
  std::printf("  launch ended after %.1f s\n", seconds_since(t0));
  EXPECT_EQ(WEXITSTATUS(status), 1) << err();
  EXPECT_NE(err().find("dist: rank 0 of 2: gradient all-reduce failed or timed out"),
            std::string::npos)
      << err();
  EXPECT_NE(err().find("lighthouse: rank 1 of 2 was killed by signal 15 (stopped after rank 0 "
                       "failed)"),
            std::string::npos)
      << err();
}

TEST_F(Launcher, AStoppedRankEndsTheLaunchAboutTheTimeOutAfterItsPeerFails) {
  const pid_t launcher = start({});
  auto ranks = training_ranks(launcher);
  ASSERT_EQ(ranks.size(), 2u);
  ::kill(ranks[1], SIGSTOP);  // either rank: the other fails its next collective
  const auto t0 = Clock::now();
  int status = 0;
  const bool ended = wait_for(launcher, 30, &status);
  if (!ended) {
    for (const pid_t r : ranks) ::kill(r, SIGKILL);
    kill_all({launcher});
  }
  ASSERT_TRUE(ended) << "the launcher still runs 30 s after a rank was stopped: " << err();
  std::printf("  launch ended %.1f s after SIGSTOP\n", seconds_since(t0));
  EXPECT_NE(WEXITSTATUS(status), 0) << err();
  EXPECT_NE(err().find("failed or timed out (dist.timeout_s = 2)"), std::string::npos) << err();
  EXPECT_NE(err().find("failed)"), std::string::npos) << err();  // the other one was stopped
  EXPECT_TRUE(children_of(launcher).empty());
}

TEST_F(Launcher, ALauncherKilledWithSigkillStopsItsRanks) {
  // Orphaned ranks become this process's children, so the test can wait for them.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  const pid_t launcher = start({});
  auto ranks = training_ranks(launcher);
  ASSERT_EQ(ranks.size(), 2u);
  ::kill(launcher, SIGKILL);
  ::waitpid(launcher, nullptr, 0);
  for (const pid_t r : ranks) {
    int status = 0;
    const bool ended = wait_for(r, 30, &status);
    if (!ended) kill_all(ranks);
    ASSERT_TRUE(ended) << "rank pid " << r << " still trains 30 s after its launcher died";
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  }
}

}  // namespace
}  // namespace lighthouse::train
