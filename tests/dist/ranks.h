// In-process ranks for the context-parallel tests: W threads, each joining one group through
// the store this process hosts on 127.0.0.1 (Gloo, or NCCL with rank r on cuda:r when `cuda`)
// and running the same function; the first failure is rethrown.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <exception>
#include <thread>
#include <vector>

#include "dist/group.h"
#include "dist/launch.h"
#include "support/common.h"

namespace lighthouse::dist {

template <typename F>
void run_ranks(int W, F&& fn, bool cuda = false) {
  const HostedStore store;  // rank 0 does not bind a port: no race with other processes
  std::vector<std::exception_ptr> errors(static_cast<size_t>(W));
  std::vector<std::thread> threads;
  for (int r = 0; r < W; ++r)
    threads.emplace_back([&, r] {
      try {
        LaunchEnv env;
        env.present = true;
        env.rank = env.local_rank = r;
        env.world = W;
        env.master_port = store.port();
        env.agent_store = true;
        const torch::Device device = cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(r))
                                          : torch::Device(torch::kCPU);
        Group g(env, device, std::chrono::seconds(60));
        fn(g);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

using test::rel_err;  // max |a - b| / max |b| (support/common.h)

}  // namespace lighthouse::dist
