// A multi-process launch on this machine without torchrun (`--set dist.world_size=N`): the
// launching process starts N copies of its own command line, each with the variables torchrun
// would set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT and
// TORCHELASTIC_USE_AGENT_STORE=True: the store this process hosts), forwards SIGINT / SIGTERM
// to them and waits for all. The ranks share one process group and end with the launcher
// (PR_SET_PDEATHSIG: a launcher killed even by SIGKILL takes them with it); when one rank
// fails, the others get SIGCONT and SIGTERM, then SIGKILL 5 s later, so a stalled or stopped
// rank never keeps the launch waiting.
#pragma once

#include <memory>

namespace lighthouse::dist {

// Runs `world` ranks of this process's command line (from /proc/self/cmdline) and returns the
// exit code of the launch: 0 when every rank exited 0, else the first failing rank's code
// (128 + the signal for a rank killed by a signal). Each failing rank is reported on stderr,
// those stopped because another failed as such.
int launch_local(int world);

// The rendezvous store of ranks this process starts (threads or processes), hosted here on a
// port the kernel picks as it binds, so no other process can take the port first; the ranks
// connect to it as clients (LaunchEnv::agent_store, as under torchrun). Throws
// std::runtime_error when it cannot listen.
class HostedStore {
 public:
  HostedStore();
  ~HostedStore();
  HostedStore(const HostedStore&) = delete;
  HostedStore& operator=(const HostedStore&) = delete;
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lighthouse::dist
