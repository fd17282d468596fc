// Graceful stop of the training loop on SIGINT (Ctrl-C) and SIGTERM (cluster preemption).
// While a StopSignals is alive, the first signal is only recorded: the loop finishes the
// step it is in, writes a checkpoint and returns. A second signal ends the process at once
// with exit code 128 + the signal number, writing nothing more.
#pragma once

namespace lighthouse::train {

class StopSignals {
 public:
  StopSignals();   // installs the handlers
  ~StopSignals();  // restores the previous ones
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The first signal received (SIGINT or SIGTERM), 0 if none.
  int pending() const;
};

// "SIGINT", "SIGTERM", else "signal".
const char* signal_name(int sig);

}  // namespace lighthouse::train
