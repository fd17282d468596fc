// Local multi-process launch (launch.h).
#include "dist/launch.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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

std::vector<pid_t> g_children;  // for the signal forwarder

void forward(int sig) {
  for (const pid_t p : g_children) ::kill(p, sig);
}

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
  for (int r = 0; r < world; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      forward(SIGTERM);
      throw std::runtime_error(std::string("dist: fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
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
    g_children.push_back(pid);
  }
  auto old_int = std::signal(SIGINT, forward);
  auto old_term = std::signal(SIGTERM, forward);
  int code = 0;
  for (size_t done = 0; done < g_children.size();) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    int rank = -1;
    for (size_t i = 0; i < g_children.size(); ++i)
      if (g_children[i] == pid) rank = static_cast<int>(i);
    if (rank < 0) continue;
    ++done;
    int rc = 0;
    if (WIFEXITED(status)) rc = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) rc = 128 + WTERMSIG(status);
    if (rc != 0) {
      std::cerr << "lighthouse: rank " << rank << " of " << world << " "
                << (WIFSIGNALED(status) ? "was killed by signal " + std::to_string(rc - 128)
                                        : "exited with code " + std::to_string(rc))
                << std::endl;
      if (code == 0) code = rc;
    }
  }
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  g_children.clear();
  return code;
}

}  // namespace lighthouse::dist
