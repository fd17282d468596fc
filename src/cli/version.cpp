// `lighthouse --version`: the project version (CMake's project version), the git commit at
// configure time ("unknown" outside a git checkout), the libtorch version, CUDA (compiled in,
// devices visible) and the SDPA backends libtorch offers here.
#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <string>

#include "cli/commands.h"

#ifndef LIGHTHOUSE_VERSION
#define LIGHTHOUSE_VERSION "unknown"
#endif
#ifndef LIGHTHOUSE_GIT_COMMIT
#define LIGHTHOUSE_GIT_COMMIT "unknown"
#endif

namespace lighthouse::cli {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

std::string version_text() {
  const auto& ctx = at::globalContext();
#ifdef LIGHTHOUSE_WITH_CUDA
  const bool compiled = true;
#else
  const bool compiled = false;
#endif
  const bool device = compiled && torch::cuda::is_available();
  const int64_t devices = device ? static_cast<int64_t>(torch::cuda::device_count()) : 0;

  std::vector<std::string> cpu, cuda;
  if (ctx.userEnabledFlashSDP()) cpu.push_back("flash");
  if (ctx.userEnabledMathSDP()) cpu.push_back("math");
  if (device) {
    if (at::Context::hasCuDNN() && ctx.userEnabledCuDNNSDP()) cuda.push_back("cudnn");
    if (ctx.userEnabledFlashSDP()) cuda.push_back("flash");
    if (ctx.userEnabledMemEfficientSDP()) cuda.push_back("efficient");
    if (ctx.userEnabledMathSDP()) cuda.push_back("math");
  }
  std::string s = std::string("lighthouse ") + LIGHTHOUSE_VERSION + "\n";
  s += std::string("git commit: ") + LIGHTHOUSE_GIT_COMMIT + "\n";
  s += std::string("torch: ") + TORCH_VERSION + "\n";
  s += std::string("CUDA: ") + (compiled ? "compiled in" : "not compiled in") + "; devices: " +
       (device ? std::to_string(devices) + " available" : std::string("none available")) + "\n";
  s += "SDPA backends: cpu: " + join(cpu) +
       "; cuda: " + (device ? join(cuda) : std::string("none (no CUDA device)"));
  return s;
}

}  // namespace

void add_version(CLI::App& app) {
  app.set_version_flag("--version", version_text,
                       "print the version, git commit, torch version, CUDA and SDPA backends");
}

}  // namespace lighthouse::cli
