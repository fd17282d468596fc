// The run folder's lock file (run_lock.h).
#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "train/run_config.h"

namespace lighthouse::train {
namespace {

std::string read_all(int fd) {
  std::string text;
  char buf[256];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof(buf), at);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    at += n;
    if (text.size() > 4096) break;  // a lock file is one short line
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text;
}

std::string own_text() { return "pid " + std::to_string(::getpid()) + " on host " + host_name(); }

[[noreturn]] void refuse(const std::string& path, const std::string& dir, const std::string& who) {
  throw ConfigError("run.dir: " + dir + " is in use by another trainer (" +
                    (who.empty() ? std::string("its holder is starting") : who) +
                    ", lock file " + path +
                    "); wait for it to finish, stop it, or choose another run.dir");
}

bool same_file(int fd, const std::string& path) {
  struct stat a, b;
  return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

}  // namespace

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

bool lock_holder_alive(const std::string& text) {
  long long pid = 0;
  char host[256] = {};
  if (std::sscanf(text.c_str(), "pid %lld on host %255s", &pid, host) != 2 || pid <= 0)
    return false;
  if (host_name() != host) return true;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  // A zombie (ended, not yet reaped) holds nothing.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

RunLock::RunLock(const std::string& run_dir, std::string* note) : path_(run_dir + "/lock") {
  // A released lock file is removed, and a stale one may be replaced, between our open and
  // our flock: then the path names another file and we start again.
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
      throw ConfigError("run.dir: cannot open the lock file " + path_ + ": " +
                        std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const std::string who = read_all(fd);
      if (err == EWOULDBLOCK) {
        ::close(fd);
        refuse(path_, run_dir, who);
      }
      // No flock on this filesystem: the holder the file names decides.
      if (!who.empty() && who != own_text() && lock_holder_alive(who)) {
        ::close(fd);
        refuse(path_, run_dir, who);
      }
    }
    if (!same_file(fd, path_)) {
      ::close(fd);
      continue;
    }
    const std::string previous = read_all(fd);
    if (note && !previous.empty() && previous != own_text())
      *note = "run.dir: took over the stale lock " + path_ + " of " + previous +
              ", which is no longer running";
    const std::string text = own_text() + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
      const int err = errno;
      ::close(fd);
      throw ConfigError("run.dir: cannot write the lock file " + path_ + ": " +
                        std::strerror(err));
    }
    fd_ = fd;
    return;
  }
  throw ConfigError("run.dir: cannot take the lock file " + path_ +
                    ": other processes keep replacing it");
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // Removed before the close, so no one locks this file once we let go; a lock file that is
  // no longer ours (removed by hand, then taken by another trainer) is left alone.
  if (same_file(fd_, path_)) ::unlink(path_.c_str());
  ::close(fd_);
}

}  // namespace lighthouse::train
