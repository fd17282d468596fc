// What the trainer reports when a step or the model cannot be built (trainer.cpp): out of
// memory as a ConfigError that names the config keys behind the allocation (before
// allocating, when the shapes alone cannot fit the machine), and the non-finite-step fault
// hook of the tests.
#pragma once

#include <cstdint>
#include <exception>
#include <string>

#include <c10/core/Device.h>

#include "train/run_config.h"

namespace lighthouse::train {

// Out of memory (or a size overflow) while building the model and its optimizer: the
// parameter count and the keys that size it (model.ffn_hidden, model.d_model, ...).
[[noreturn]] void throw_model_oom(const RunConfig& cfg, const std::exception& e);
// Out of memory inside optimizer step `step`: the keys that size the activations.
[[noreturn]] void throw_step_oom(const RunConfig& cfg, int64_t step, const std::exception& e);

// Parameters of the model of cfg, from the shapes alone (no allocation); model.vocab_size 0
// counts as the byte vocabulary.
double parameter_count(const RunConfig& cfg);

// Whether `e` is an allocation failure: c10::OutOfMemoryError (the CUDA allocator),
// std::bad_alloc, or the CPU allocator's c10::Error ("DefaultCPUAllocator: can't allocate
// memory").
bool is_out_of_memory(const std::exception& e);

// The least host memory (bytes) training cfg takes in one process, from the shapes alone. On
// CPU (`on_cpu`): fp32 weights and gradients (8 B per parameter) and this rank's share of
// AdamW's two moments (8 B / dp); and the step's forward on top of weights and moments: the
// logits and their log-softmax (2 x batch x context / cp x vocab x 4 B) and every layer's
// input kept for backward (n_layers x batch x context / cp x d_model x 4 B). On CUDA: the fp32
// weights the host builds before moving them. model.vocab_size 0 (not yet read from the data)
// leaves the embeddings and logits out.
struct MemoryNeed {
  double model = 0;        // weights, gradients and moments
  double step = 0;         // weights, moments and the activations of one step
  double activations = 0;  // of which activations
  double bytes() const { return model > step ? model : step; }
};
MemoryNeed least_memory(const RunConfig& cfg, int64_t dp, bool on_cpu);

// Refuses, before anything is allocated, a run whose least_memory on `device` exceeds
// `available` bytes (device.h's available_host_memory(); < 0: unknown, nothing refused): a
// ConfigError naming the keys that size the larger part. (The CUDA allocator's failures are
// translated as they happen: throw_step_oom.)
void check_memory_fits(const RunConfig& cfg, int64_t dp, const c10::Device& device,
                       int64_t available);

// Test hook: LIGHTHOUSE_FAULT_NONFINITE="3:loss,5:grad" makes the loss of step 3 NaN (before
// backward, so its gradients are NaN too) and one gradient element of step 5 +inf. Returns
// "loss", "grad" or "" for `step` (1-based).
std::string nonfinite_fault(int64_t step);

}  // namespace lighthouse::train
