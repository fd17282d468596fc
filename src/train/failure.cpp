// Out-of-memory messages naming config keys, and the non-finite fault hook (failure.h).
#include "train/failure.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "model/llama.h"

namespace lighthouse::train {
namespace {

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

std::string what_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

}  // namespace

double parameter_count(const RunConfig& cfg) {
  const auto& m = cfg.model;
  const double d = double(m.d_model), L = double(m.n_layers), V = double(model::kVocab);
  const double attn = d * double(m.head_dim) * double(2 * m.n_heads + 2 * m.n_kv_heads);
  const double ffn = 3 * d * double(m.ffn_hidden);
  return L * (attn + ffn + 2 * d) + 2 * V * d + d;
}

void throw_model_oom(const RunConfig& cfg, const std::exception& e) {
  const auto& m = cfg.model;
  const double d = double(m.d_model), L = double(m.n_layers);
  const double ffn = L * 3 * d * double(m.ffn_hidden);
  const double attn = L * d * double(m.head_dim) * double(2 * m.n_heads + 2 * m.n_kv_heads);
  const double total = parameter_count(cfg);
  std::ostringstream os;
  os.precision(3);
  os << "model: cannot allocate the model: " << total << " parameters = " << gib(4 * total)
     << " of fp32 weights (AdamW and gradients need 3x more); ";
  if (ffn >= attn)
    os << "model.ffn_hidden = " << m.ffn_hidden << " makes " << ffn
       << " of them (3 x model.d_model x model.ffn_hidden x model.n_layers)";
  else
    os << "model.n_heads / model.n_kv_heads / model.head_dim make " << attn
       << " of them (model.d_model x model.head_dim x 2 (n_heads + n_kv_heads) x n_layers)";
  os << "; reduce model.ffn_hidden, model.d_model or model.n_layers (" << what_of(e) << ")";
  throw ConfigError(os.str());
}

void throw_step_oom(const RunConfig& cfg, int64_t step, const std::exception& e) {
  std::ostringstream os;
  os << "train: out of memory in step " << step << " (train.batch_size = " << cfg.train.batch_size
     << ", train.context = " << cfg.train.context << ", model.d_model = " << cfg.model.d_model
     << ", model.ffn_hidden = " << cfg.model.ffn_hidden
     << ", model.n_layers = " << cfg.model.n_layers
     << "): reduce train.batch_size (raise train.grad_accum to keep the "
     << "tokens per step) or train.context, or set model.activation_checkpointing = true ("
     << what_of(e) << ")";
  throw ConfigError(os.str());
}

std::string nonfinite_fault(int64_t step) {
  const char* env = std::getenv("LIGHTHOUSE_FAULT_NONFINITE");
  if (!env || !*env) return "";
  std::stringstream ss(env);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto colon = item.find(':');
    if (colon == std::string::npos) continue;
    if (std::atoll(item.substr(0, colon).c_str()) == step) return item.substr(colon + 1);
  }
  return "";
}

}  // namespace lighthouse::train
