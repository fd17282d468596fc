// Device resolution, synchronization and memory readings (device.h).
#include "train/device.h"

#include <ATen/autocast_mode.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>

#ifdef LIGHTHOUSE_TRAIN_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace lighthouse::train {

torch::Device resolve_device(const RunConfig& cfg) {
  const std::string& d = cfg.run.device;
  if (d == "cpu") return torch::kCPU;
  const bool have = torch::cuda::is_available();
  if (d == "auto") return have ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  torch::Device dev(d);
  if (!have || dev.index() >= static_cast<int64_t>(torch::cuda::device_count()))
    throw ConfigError("run.device: \"" + d + "\" requested but " +
                      std::to_string(have ? torch::cuda::device_count() : 0) +
                      " CUDA device(s) are available");
  if (!dev.has_index()) dev.set_index(0);
  return dev;
}

bool use_bf16(const RunConfig& cfg, const torch::Device& device) {
  const std::string& p = cfg.train.precision;
  if (p == "bf16" && !device.is_cuda())
    throw ConfigError(
        "train.precision: bf16 autocast needs a CUDA device, but training runs on cpu");
  return p == "bf16" || (p == "auto" && device.is_cuda());
}

void set_deterministic(bool on, const torch::Device& device) {
  auto& ctx = at::globalContext();
  if (on && device.is_cuda() && std::getenv("CUBLAS_WORKSPACE_CONFIG") == nullptr)
    ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  ctx.setDeterministicAlgorithms(on, /*warn_only=*/false);
  ctx.setDeterministicCuDNN(on);
  if (on) ctx.setBenchmarkCuDNN(false);
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

void reset_peak_memory(const torch::Device& device) {
#ifdef LIGHTHOUSE_TRAIN_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#else
  (void)device;
#endif
}

int64_t peak_memory_bytes(const torch::Device& device) {
#ifdef LIGHTHOUSE_TRAIN_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)]
        .peak;
  }
#else
  (void)device;
#endif
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

int64_t current_memory_bytes(const torch::Device& device) {
#ifdef LIGHTHOUSE_TRAIN_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)]
        .current;
  }
#else
  (void)device;
#endif
  std::ifstream in("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

namespace {

// The first number of a file ("max" or anything else: -1).
int64_t read_number(const std::string& path) {
  std::ifstream in(path);
  int64_t v = -1;
  if (!(in >> v)) return -1;
  return v;
}

// A "Key:   123 kB" line of /proc/meminfo or /proc/self/status, in bytes; -1 when absent.
int64_t proc_kb(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return std::atoll(line.c_str() + key.size() + 1) * 1024;
  return -1;
}

}  // namespace

int64_t available_host_memory() {
  int64_t best = -1;
  const auto bound = [&](int64_t v) {  // a limit already exceeded leaves 0
    v = std::max<int64_t>(v, 0);
    if (best < 0 || v < best) best = v;
  };
  const int64_t avail = proc_kb("/proc/meminfo", "MemAvailable");
  if (avail >= 0) bound(avail + std::max<int64_t>(0, proc_kb("/proc/meminfo", "SwapFree")));
  const int64_t v2 = read_number("/sys/fs/cgroup/memory.max");  // "max": no limit
  if (v2 > 0) bound(v2 - std::max<int64_t>(0, read_number("/sys/fs/cgroup/memory.current")));
  const int64_t v1 = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  if (v1 > 0 && v1 < (int64_t{1} << 60))  // v1 writes a huge number for no limit
    bound(v1 - std::max<int64_t>(0, read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes")));
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    bound(static_cast<int64_t>(rl.rlim_cur) -
          std::max<int64_t>(0, proc_kb("/proc/self/status", "VmSize")));
  return best;
}

}  // namespace lighthouse::train
