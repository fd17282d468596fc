// Out-of-memory messages naming config keys, and the non-finite fault hook (failure.h).
#include "train/failure.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>
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

// The parameters of cfg's model by what sizes them, with `vocab` for model.vocab_size.
struct ParameterTerms {
  double vocab = 0, attn = 0, ffn = 0, embed = 0, norms = 0;
  double total() const { return attn + ffn + embed + norms; }
};

ParameterTerms terms(const RunConfig& cfg, double vocab) {
  const auto& m = cfg.model;
  const double d = double(m.d_model), L = double(m.n_layers);
  ParameterTerms t;
  t.vocab = vocab;
  t.attn = L * d * double(m.head_dim) * double(2 * m.n_heads + 2 * m.n_kv_heads);
  t.ffn = L * 3 * d * double(m.ffn_hidden);
  t.embed = 2 * vocab * d;  // the embedding and the untied output head
  t.norms = L * 2 * d + d;
  return t;
}

// "model.ffn_hidden = 384 makes 1.2e+06 of them (...)": the term that dominates.
std::string largest_term(const RunConfig& cfg, const ParameterTerms& t) {
  const auto& m = cfg.model;
  std::ostringstream os;
  os.precision(3);
  if (t.embed >= t.ffn && t.embed >= t.attn)
    os << "model.vocab_size = " << int64_t(t.vocab) << " makes " << t.embed
       << " of them (2 x model.vocab_size x model.d_model)";
  else if (t.ffn >= t.attn)
    os << "model.ffn_hidden = " << m.ffn_hidden << " makes " << t.ffn
       << " of them (3 x model.d_model x model.ffn_hidden x model.n_layers)";
  else
    os << "model.n_heads / model.n_kv_heads / model.head_dim make " << t.attn
       << " of them (model.d_model x model.head_dim x 2 (n_heads + n_kv_heads) x n_layers)";
  return os.str();
}

std::string reduce_keys(const ParameterTerms& t) {
  if (t.embed >= t.ffn && t.embed >= t.attn)
    return "reduce model.vocab_size (or model.d_model)";
  return "reduce model.ffn_hidden, model.d_model or model.n_layers";
}

}  // namespace

double parameter_count(const RunConfig& cfg) {
  return terms(cfg, double(to_model_config(cfg).vocab)).total();
}

bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) || dynamic_cast<const std::bad_alloc*>(&e))
    return true;
  const auto* c = dynamic_cast<const c10::Error*>(&e);
  return c && std::string(c->what_without_backtrace()).find("DefaultCPUAllocator") !=
                  std::string::npos;
}

MemoryNeed least_memory(const RunConfig& cfg, int64_t dp, bool on_cpu) {
  const ParameterTerms t = terms(cfg, double(cfg.model.vocab));
  const double P = t.total();
  MemoryNeed need;
  if (!on_cpu) {  // the host builds the fp32 weights, then they move to the GPU
    need.model = need.step = 4 * P;
    return need;
  }
  const double moments = 8 * P / double(std::max<int64_t>(dp, 1));
  need.model = 8 * P + moments;
  const double tokens = double(cfg.train.batch_size) *
                        (double(cfg.train.context) / double(std::max<int64_t>(cfg.dist.cp, 1)));
  need.activations = 2 * tokens * double(cfg.model.vocab) * 4 +
                     double(cfg.model.n_layers) * tokens * double(cfg.model.d_model) * 4;
  need.step = 4 * P + moments + need.activations;
  return need;
}

void check_memory_fits(const RunConfig& cfg, int64_t dp, const c10::Device& device,
                       int64_t available) {
  if (available < 0) return;
  const MemoryNeed need = least_memory(cfg, dp, device.is_cpu());
  if (need.bytes() <= double(available)) return;
  const ParameterTerms t = terms(cfg, double(cfg.model.vocab));
  std::ostringstream os;
  os.precision(3);
  const std::string have = "more than the " + gib(double(available)) +
                           " this process can still allocate on this machine";
  if (need.model > double(available)) {
    os << "model: cannot train the model here: " << t.total() << " parameters need at least "
       << gib(need.model)
       << (device.is_cpu() ? " (fp32 weights and gradients, 8 B each, and AdamW's two moments, "
                             "8 B each over dist.dp = " + std::to_string(std::max<int64_t>(dp, 1)) +
                                 " ranks)"
                           : " of fp32 weights built on the host")
       << ", " << have << "; " << largest_term(cfg, t) << "; " << reduce_keys(t);
    throw ConfigError(os.str());
  }
  os << "train.context: a step of train.batch_size = " << cfg.train.batch_size
     << " x train.context = " << cfg.train.context << " tokens needs at least "
     << gib(need.activations) << " of activations (the logits and their log-softmax, 2 x "
     << "batch x context x model.vocab_size ("
     << (cfg.model.vocab > 0 ? std::to_string(cfg.model.vocab) : "not read from the data yet")
     << ") x 4 B, and each "
     << "layer's input, model.n_layers x batch x context x model.d_model x 4 B) on top of the "
     << "model's " << gib(need.step - need.activations) << ", " << have
     << "; reduce train.context or train.batch_size (raise train.grad_accum to keep the tokens "
        "per step)";
  throw ConfigError(os.str());
}

void throw_model_oom(const RunConfig& cfg, const std::exception& e) {
  const ParameterTerms t = terms(cfg, double(to_model_config(cfg).vocab));
  const double total = t.total();
  std::ostringstream os;
  os.precision(3);
  os << "model: cannot allocate the model: " << total << " parameters = " << gib(4 * total)
     << " of fp32 weights (AdamW and gradients need 3x more); " << largest_term(cfg, t) << "; "
     << reduce_keys(t) << " (" << what_of(e) << ")";
  throw ConfigError(os.str());
}

void throw_step_oom(const RunConfig& cfg, int64_t step, const std::exception& e) {
  std::ostringstream os;
  os << "train: out of memory in step " << step << " (train.batch_size = " << cfg.train.batch_size
     << ", train.context = " << cfg.train.context << ", model.d_model = " << cfg.model.d_model
     << ", model.ffn_hidden = " << cfg.model.ffn_hidden
     << ", model.vocab_size = " << to_model_config(cfg).vocab
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
