// Local multi-process launch (launch.h).
#include "dist/launch.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace lighthouse::dist {
namespace {

// The ranks' process group (the first rank's pid), for the signal forwarder.
volatile pid_t g_group = 0;
volatile std::sig_atomic_t g_asked_to_stop = 0;  // SIGINT / SIGTERM came to the launcher

void forward(int sig) {
  if (g_group > 0) ::kill(-g_group, sig);
}

void forward_stop(int sig) {
  g_asked_to_stop = 1;
  forward(sig);
}

// How long ranks asked to stop (SIGTERM, after another rank failed) may take before SIGKILL.
constexpr auto kStopGrace = std::chrono::seconds(5);

}  // namespace

struct HostedStore::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
};

HostedStore::HostedStore() : impl_(std::make_unique<Impl>()) {
  c10d::TCPStoreOptions o;
  o.port = 0;  // the kernel picks the port as the server binds
  o.isServer = true;
  o.waitWorkers = false;
  try {
    impl_->store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", o);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("dist: cannot host the rendezvous store: ") + e.what());
  }
}

HostedStore::~HostedStore() = default;

int HostedStore::port() const { return impl_->store->getPort(); }

namespace {

std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::string cur;
  for (const char c : all) {
    if (c == '\0') {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (args.empty()) throw std::runtime_error("dist: cannot read /proc/self/cmdline");
  return args;
}

}  // namespace

int launch_local(int world) {
  const auto args = own_command_line();
  const HostedStore store;  // lives until every rank has exited
  const std::string port = std::to_string(store.port());
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::cout.flush();
  std::cerr.flush();
  const pid_t launcher = ::getpid();
  std::vector<pid_t> ranks;
  for (int r = 0; r < world; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      forward(SIGKILL);
      throw std::runtime_error(std::string("dist: fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
      // One process group for all ranks (the first rank's), signalled as one; and a launcher
      // that ends, even by SIGKILL, takes its ranks with it. SIGKILL: the signal comes once
      // per thread of the dying launcher the rank is passed through, so SIGTERM would come
      // twice and cut the checkpoint short; the last checkpoint stays the resume point.
      ::setpgid(0, r == 0 ? 0 : g_group);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != launcher) ::_exit(128 + SIGKILL);  // it ended before the prctl
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", port.c_str(), 1);
      ::setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
      ::setenv("TORCHELASTIC_RESTART_COUNT", "0", 1);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "lighthouse: error: dist: cannot start rank %d: %s\n", r,
                   std::strerror(errno));
      ::_exit(127);
    }
    if (r == 0) g_group = pid;
    ::setpgid(pid, g_group);  // here too: whichever of the two runs first
    ranks.push_back(pid);
  }
  g_asked_to_stop = 0;
  auto old_int = std::signal(SIGINT, forward_stop);
  auto old_term = std::signal(SIGTERM, forward_stop);
  int code = 0;
  int failed = -1;  // the first failing rank: the others are stopped
  std::chrono::steady_clock::time_point kill_at;
  for (size_t done = 0; done < ranks.size();) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, failed < 0 ? 0 : WNOHANG);
    if (pid == 0) {  // stopping the others: SIGKILL once the grace period is over
      if (std::chrono::steady_clock::now() >= kill_at) forward(SIGKILL);
      ::usleep(20 * 1000);
      continue;
    }
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    int rank = -1;
    for (size_t i = 0; i < ranks.size(); ++i)
      if (ranks[i] == pid) rank = static_cast<int>(i);
    if (rank < 0) continue;
    ++done;
    int rc = 0;
    if (WIFEXITED(status)) rc = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) rc = 128 + WTERMSIG(status);
    if (rc == 0) continue;
    std::cerr << "lighthouse: rank " << rank << " of " << world << " "
              << (WIFSIGNALED(status) ? "was killed by signal " + std::to_string(rc - 128)
                                      : "exited with code " + std::to_string(rc))
              << (failed >= 0 ? " (stopped after rank " + std::to_string(failed) + " failed)"
                              : "")
              << std::endl;
    if (code == 0) code = rc;
    if (failed < 0 && done < ranks.size() && !g_asked_to_stop) {
      // The others would wait for it until dist.timeout_s or for ever (a stopped rank):
      // SIGTERM (SIGCONT wakes a stopped one), then SIGKILL after the grace period. (After
      // a forwarded SIGINT / SIGTERM every rank is stopping already: a second signal would
      // cut a checkpoint short.)
      failed = rank;
      forward(SIGTERM);
      forward(SIGCONT);
      kill_at = std::chrono::steady_clock::now() + kStopGrace;
    }
  }
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  g_group = 0;
  return code;
}

}  // namespace lighthouse::dist
