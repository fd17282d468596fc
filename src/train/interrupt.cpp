// SIGINT / SIGTERM handlers of the training loop (interrupt.h). The handler only stores the
// signal number and writes through write(2), both async-signal-safe.
#include "train/interrupt.h"

#include <unistd.h>

#include <csignal>
#include <cstring>

namespace lighthouse::train {
namespace {

volatile std::sig_atomic_t g_pending = 0;
struct sigaction g_old_int, g_old_term;

void say(const char* msg) {
  const ssize_t rc = ::write(STDERR_FILENO, msg, std::strlen(msg));
  (void)rc;
}

void on_signal(int sig) {
  if (g_pending != 0) {
    say("\nlighthouse: second signal: exiting now, without a checkpoint of this step\n");
    ::_exit(128 + sig);
  }
  g_pending = sig;
  say(sig == SIGINT ? "\nlighthouse: SIGINT: stopping after this step and its checkpoint "
                      "(signal again to exit now)\n"
                    : "\nlighthouse: SIGTERM: stopping after this step and its checkpoint "
                      "(signal again to exit now)\n");
}

}  // namespace

StopSignals::StopSignals() {
  g_pending = 0;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // interrupted reads and writes resume
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignals::~StopSignals() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

int StopSignals::pending() const { return g_pending; }

const char* signal_name(int sig) {
  if (sig == SIGINT) return "SIGINT";
  if (sig == SIGTERM) return "SIGTERM";
  return "signal";
}

}  // namespace lighthouse::train
