#include "bench/bench_profile.h"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <set>

namespace lighthouse::cli {
namespace {

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// A kernel's name without its template arguments and parameter list, shortened for a table.
std::string short_name(const std::string& name, size_t width) {
  std::string s = name.substr(0, name.find('('));
  if (s.size() > width) s = s.substr(0, width - 3) + "...";
  return s;
}

}  // namespace

std::string kernel_category(const std::string& name) {
  std::string s(name);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  // ATen's launcher names say nothing of the operation ("gpu_kernel_impl_nocast<addcmul...>").
  for (const char* noise : {"gpu_kernel_impl_nocast", "loadwithcast", "storewithcast"})
    for (size_t at = s.find(noise); at != std::string::npos; at = s.find(noise))
      s.erase(at, std::string(noise).size());
  if (has(s, "lighthouse::")) {
    for (const char* k : {"gather", "scatter", "pool_score", "select_kernel", "tail_kernel",
                          "tail_score", "dilated"})
      if (has(s, k)) return "lighthouse op";
    return "lighthouse fused layers";
  }
  for (const char* k : {"fmha", "flash", "sdpa", "attention", "attn", "fprop_sm", "dgrad_sm"})
    if (has(s, k)) return "attention (SDPA)";
  for (const char* k : {"gemm", "nvjet", "xmma", "cutlass", "cublas", "splitk", "matmul"})
    if (has(s, k)) return "gemm";
  for (const char* k : {"adam", "multi_tensor", "foreach", "lpnorm"})
    if (has(s, k)) return "optimizer";
  if (has(s, "norm")) return "norm";
  if (has(s, "reduce")) return "reduction";
  for (const char* k : {"memcpy", "memset", "copy", "cast", "fill", "catarray"})
    if (has(s, k)) return "copy / cast";
  for (const char* k : {"elementwise", "vectorized", "unrolled", "index", "cat"})
    if (has(s, k)) return "elementwise";
  return "other";
}

ProfileSummary summarize_kernels(const std::vector<std::pair<std::string, double>>& kernels_us,
                                 int64_t steps) {
  ProfileSummary p;
  p.steps = steps;
  const double per = 1.0 / static_cast<double>(std::max<int64_t>(steps, 1));
  std::map<std::string, KernelTime> by_name;
  for (const auto& [name, us] : kernels_us) {
    KernelTime& k = by_name[name];
    k.name = name;
    k.ms_per_step += us * 1e-3 * per;
    k.launches_per_step += per;
    p.category_ms[kernel_category(name)] += us * 1e-3 * per;
    p.device_ms_per_step += us * 1e-3 * per;
  }
  for (auto& [name, k] : by_name) p.kernels.push_back(k);
  std::sort(p.kernels.begin(), p.kernels.end(),
            [](const KernelTime& a, const KernelTime& b) { return a.ms_per_step > b.ms_per_step; });
  return p;
}

ProfileSummary profile_steps(const std::function<void()>& step, int64_t steps) {
  namespace prof = torch::profiler::impl;
  namespace kin = torch::autograd::profiler;
  const prof::ProfilerConfig config(prof::ProfilerState::KINETO);
  const std::set<prof::ActivityType> activities = {prof::ActivityType::CPU,
                                                   prof::ActivityType::CUDA};
  kin::prepareProfiler(config, activities);
  kin::enableProfiler(config, activities);
  try {
    for (int64_t i = 0; i < steps; ++i) step();
  } catch (...) {
    kin::disableProfiler();
    throw;
  }
  const std::unique_ptr<kin::ProfilerResult> result = kin::disableProfiler();
  std::vector<std::pair<std::string, double>> kernels;
  for (const auto& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CUDA) continue;  // kernels, copies and memsets
    kernels.emplace_back(e.name(), static_cast<double>(e.durationNs()) * 1e-3);
  }
  return summarize_kernels(kernels, steps);
}

void print_profile(const std::string& mode, double step_ms, const ProfileSummary& p, int top) {
  char line[256];
  std::printf("profile, %s (%lld steps): kernels %.1f ms of a %.1f ms step (%.0f%% busy)\n",
              mode.c_str(), static_cast<long long>(p.steps), p.device_ms_per_step, step_ms,
              step_ms > 0 ? 100.0 * p.device_ms_per_step / step_ms : 0.0);
  std::vector<std::pair<std::string, double>> cats(p.category_ms.begin(), p.category_ms.end());
  std::sort(cats.begin(), cats.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [name, ms] : cats) {
    std::snprintf(line, sizeof(line), "  %-26s %9.2f ms  %5.1f%%", name.c_str(), ms,
                  p.device_ms_per_step > 0 ? 100.0 * ms / p.device_ms_per_step : 0.0);
    std::cout << line << "\n";
  }
  const int n = std::min<int>(top, static_cast<int>(p.kernels.size()));
  for (int i = 0; i < n; ++i) {
    const KernelTime& k = p.kernels[i];
    std::snprintf(line, sizeof(line), "  %9.2f ms %7.0f x  %-20s %s", k.ms_per_step,
                  k.launches_per_step, kernel_category(k.name).c_str(),
                  short_name(k.name, 90).c_str());
    std::cout << line << "\n";
  }
  std::cout << std::flush;
}

nlohmann::json profile_json(const ProfileSummary& p, int top) {
  nlohmann::json j;
  j["steps"] = p.steps;
  j["device_ms_per_step"] = p.device_ms_per_step;
  j["category_ms_per_step"] = p.category_ms;
  nlohmann::json ks = nlohmann::json::array();
  const int n = std::min<int>(top, static_cast<int>(p.kernels.size()));
  for (int i = 0; i < n; ++i)
    ks.push_back({{"name", p.kernels[i].name},
                  {"category", kernel_category(p.kernels[i].name)},
                  {"ms_per_step", p.kernels[i].ms_per_step},
                  {"launches_per_step", p.kernels[i].launches_per_step}});
  j["kernels"] = ks;
  return j;
}

}  // namespace lighthouse::cli
