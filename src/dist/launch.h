// A multi-process launch on this machine without torchrun (`--set dist.world_size=N`): the
// launching process starts N copies of its own command line, each with the variables torchrun
// would set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT: a free port),
// forwards SIGINT / SIGTERM to them and waits for all.
#pragma once

namespace lighthouse::dist {

// Runs `world` ranks of this process's command line (from /proc/self/cmdline) and returns the
// exit code of the launch: 0 when every rank exited 0, else the first failing rank's code
// (128 + the signal for a rank killed by a signal). Each failing rank is reported on stderr.
int launch_local(int world);

// A TCP port the kernel reports free now (bound to port 0, then closed): a rendezvous port.
int free_port();

}  // namespace lighthouse::dist
