// What the trainer reports when a step or the model cannot be built (trainer.cpp): out of
// memory as a ConfigError that names the config keys behind the allocation, and the
// non-finite-step fault hook of the tests.
#pragma once

#include <cstdint>
#include <exception>
#include <string>

#include "train/run_config.h"

namespace lighthouse::train {

// Out of memory (or a size overflow) while building the model and its optimizer: the
// parameter count and the keys that size it (model.ffn_hidden, model.d_model, ...).
[[noreturn]] void throw_model_oom(const RunConfig& cfg, const std::exception& e);
// Out of memory inside optimizer step `step`: the keys that size the activations.
[[noreturn]] void throw_step_oom(const RunConfig& cfg, int64_t step, const std::exception& e);

// Parameters of the model of cfg, from the shapes alone (no allocation).
double parameter_count(const RunConfig& cfg);

// Test hook: LIGHTHOUSE_FAULT_NONFINITE="3:loss,5:grad" makes the loss of step 3 NaN (before
// backward, so its gradients are NaN too) and one gradient element of step 5 +inf. Returns
// "loss", "grad" or "" for `step` (1-based).
std::string nonfinite_fault(int64_t step);

}  // namespace lighthouse::train
