// Local multi-process launch (launch.h).
#include "dist/launch.h"

#include <netinet/in.h>
#include <sys/socket.h>
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

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("dist: cannot open a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("dist: cannot find a free port: ") +
                             std::strerror(errno));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

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
  const std::string port = std::to_string(free_port());
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
