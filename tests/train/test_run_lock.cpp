// One trainer per run folder (train/run_lock.h): a second lock is refused naming the folder,
// the lock file and the holder's pid and host; the lock of a killed holder is taken over; a
// released lock removes its file; and through the binary, a second trainer on a folder in use
// is refused at once while the first finishes its run.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "train/checkpoint.h"
#include "train/helpers.h"
#include "train/run_lock.h"

namespace lighthouse::train {
namespace {

using testing::scratch_dir;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string own_holder() { return "pid " + std::to_string(::getpid()) + " on host " + host_name(); }

TEST(RunLock, ASecondLockIsRefusedNamingTheHolderUntilTheFirstIsReleased) {
  const std::string dir = scratch_dir("run");
  {
    const RunLock first(dir);
    EXPECT_EQ(testing::read_file(dir + "/lock"), own_holder() + "\n");
    const std::string e = error_of([&] { RunLock second(dir); });
    EXPECT_EQ(e, "run.dir: " + dir + " is in use by another trainer (" + own_holder() +
                     ", lock file " + dir + "/lock); wait for it to finish, stop it, or choose "
                     "another run.dir");
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/lock"));  // released: removed
  std::string note;
  const RunLock again(dir, &note);
  EXPECT_EQ(note, "");
}

TEST(RunLock, TheLockOfAKilledHolderIsTakenOver) {
  const std::string dir = scratch_dir("run");
  const pid_t child = ::fork();
  if (child == 0) {
    const RunLock held(dir);
    ::raise(SIGKILL);  // no destructor: the file stays behind, naming this pid
  }
  ASSERT_GT(child, 0);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  const std::string stale = "pid " + std::to_string(child) + " on host " + host_name();
  EXPECT_EQ(testing::read_file(dir + "/lock"), stale + "\n");
  EXPECT_FALSE(lock_holder_alive(stale));
  std::string note;
  const RunLock mine(dir, &note);
  EXPECT_EQ(note, "run.dir: took over the stale lock " + dir + "/lock of " + stale +
                      ", which is no longer running");
  EXPECT_EQ(testing::read_file(dir + "/lock"), own_holder() + "\n");
}

TEST(RunLock, HoldersOfTheFileFallback) {
  // Without flock the file decides: a live pid here, or any pid on another host, holds it.
  EXPECT_TRUE(lock_holder_alive(own_holder()));
  EXPECT_TRUE(lock_holder_alive("pid 1 on host another-host-" + host_name()));
  EXPECT_FALSE(lock_holder_alive(""));
  EXPECT_FALSE(lock_holder_alive("garbage"));
}

TEST(RunLock, ASecondTrainerOnARunFolderInUseIsRefused) {
  const std::string dir = scratch_dir("two");
  testing::write_file(dir + "/test.toml", testing::kTestToml);
  const std::vector<std::string> args = {"train", "--config", dir + "/test.toml", "--set",
                                         "run.dir=" + dir + "/run", "--set", "val.every=0"};
  auto first_args = args;
  first_args.insert(first_args.end(), {"--set", "train.steps=100000"});
  const pid_t first = testing::spawn_cli(first_args, dir + "/out1.txt", dir + "/err1.txt");
  const auto t0 = std::chrono::steady_clock::now();
  while (testing::step_losses(dir + "/run").empty() &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto second = args;  // another seed, a short run: before the lock it trained over the first
  second.insert(second.end(), {"--set", "run.seed=7", "--set", "train.steps=6"});
  const auto r = testing::run_cli(dir, second);
  ::kill(first, SIGTERM);  // the first stops after its step and checkpoint
  const auto a = testing::wait_cli(first, dir + "/out1.txt", dir + "/err1.txt");
  EXPECT_EQ(a.exit_code, 128 + SIGTERM) << a.err;
  EXPECT_FALSE(list_checkpoints(dir + "/run").empty());
  EXPECT_FALSE(std::filesystem::exists(dir + "/run/lock"));  // released at the end
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("run.dir: " + dir + "/run is in use by another trainer (pid " +
                       std::to_string(first) + " on host " + host_name() + ", lock file " +
                       dir + "/run/lock)"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace lighthouse::train
