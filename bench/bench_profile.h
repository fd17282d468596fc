// Device-kernel profile of training steps for `lighthouse bench train --profile-steps N`:
// libtorch's Kineto profiler records the kernels of N steps; they are summed by name and by
// category (GEMM, attention, the Lighthouse op's own kernels, elementwise, ...) per step.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace lighthouse::cli {

struct KernelTime {
  std::string name;
  double ms_per_step = 0;
  double launches_per_step = 0;
};

struct ProfileSummary {
  int64_t steps = 0;
  double device_ms_per_step = 0;                 // sum of kernel durations (not wall time)
  std::vector<KernelTime> kernels;               // by name, most time first
  std::map<std::string, double> category_ms;     // per step
};

// The category of a kernel by its (demangled) name: "gemm", "attention (SDPA)",
// "lighthouse op", "lighthouse fused layers", "optimizer", "norm", "reduction", "copy / cast",
// "elementwise" or "other".
std::string kernel_category(const std::string& name);

// Sums (kernel name, duration in microseconds) records of `steps` steps.
ProfileSummary summarize_kernels(const std::vector<std::pair<std::string, double>>& kernels_us,
                                 int64_t steps);

// Runs `step` `steps` times under the Kineto profiler (CPU + CUDA activities) and summarizes
// the CUDA kernels it recorded. CUDA only: the caller refuses other devices.
ProfileSummary profile_steps(const std::function<void()>& step, int64_t steps);

// A table of the categories and the `top` costliest kernels, for one mode, on stdout.
void print_profile(const std::string& mode, double step_ms, const ProfileSummary& p, int top);
nlohmann::json profile_json(const ProfileSummary& p, int top);

}  // namespace lighthouse::cli
