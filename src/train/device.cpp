// Device resolution, synchronization and memory readings (device.h).
#include "train/device.h"

#include <ATen/autocast_mode.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

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

}  // namespace lighthouse::train
