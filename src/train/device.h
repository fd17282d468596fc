// Device plumbing for training and benchmarks: resolving run.device and train.precision,
// the bf16 autocast scope (CUDA only; CPU trains in fp32), synchronization, peak memory and
// the host memory still available.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "model/autocast.h"
#include "train/run_config.h"

namespace lighthouse::train {

// run.device resolved ("auto" -> cuda when available); throws ConfigError naming run.device.
torch::Device resolve_device(const RunConfig& cfg);
// Whether steps run under bf16 autocast; throws ConfigError naming train.precision.
bool use_bf16(const RunConfig& cfg, const torch::Device& device);

// bf16 autocast on CUDA for the lifetime of the scope (forward passes only); no-op when off.
using model::AutocastScope;

// run.deterministic: torch's deterministic algorithms (strict: an op without a deterministic
// kernel is an error naming it), deterministic cuDNN without autotuning, and cuBLAS's fixed
// workspace (CUBLAS_WORKSPACE_CONFIG, when the environment does not set it; it takes effect
// only before the process's first cuBLAS call). Off restores torch's defaults. Process-wide.
void set_deterministic(bool on, const torch::Device& device);

void synchronize(const torch::Device& device);
// Peak memory since the last reset: CUDA allocator peak on CUDA, process peak RSS on CPU
// (which cannot be reset).
void reset_peak_memory(const torch::Device& device);
int64_t peak_memory_bytes(const torch::Device& device);
// Memory in use now: bytes held by live CUDA tensors on CUDA, resident set size on CPU.
int64_t current_memory_bytes(const torch::Device& device);

// Host memory this process can still allocate (bytes): the least of /proc/meminfo's
// MemAvailable plus SwapFree, the cgroup's limit less its usage (memory.max and
// memory.current, or cgroup v1's limit_in_bytes and usage_in_bytes) and RLIMIT_AS less the
// address space in use; -1 when none is known.
int64_t available_host_memory();

}  // namespace lighthouse::train
