// The exclusive lock of a run folder (trainer.cpp's train()): one trainer at a time writes a
// run's config, metrics and checkpoints. The lock is <run>/lock, a file holding the holder's
// pid and host ("pid 1234 on host gpu-3"), locked with flock(2) for as long as the holder
// lives: the kernel releases it when the process ends however it ends, so a lock file left by
// a killed trainer is stale and the next trainer takes it over (and says so). A clean exit
// removes the file. On a filesystem without flock the file's pid and host decide: a lock of a
// pid that is no longer running on this host is stale, any other is held.
#pragma once

#include <string>

namespace lighthouse::train {

class RunLock {
 public:
  // Takes the lock of the folder `run_dir` (which must exist). Throws ConfigError naming
  // run.dir, the lock file and its holder when another live process holds it. `note` receives
  // one line when a stale lock was taken over.
  RunLock(const std::string& run_dir, std::string* note = nullptr);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// The holder named by a lock file's text ("pid P on host H"): whether it may still hold the
// lock, i.e. it is not a pid that has ended on this host (another host's pid is never known
// to have ended). Text that names no holder counts as ended.
bool lock_holder_alive(const std::string& text);

// This machine's host name, as lock files name it.
std::string host_name();

}  // namespace lighthouse::train
