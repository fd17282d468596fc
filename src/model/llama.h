// Llama-3-style decoder on libtorch modules: token embedding, RMSNorm, RoPE, GQA attention,
// SwiGLU FFN, final norm, untied output head. Each layer's attention runs dense or
// Lighthouse; switching mode changes no parameter and no optimizer state.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "lighthouse/config.h"
#include "lighthouse/config_check.h"

namespace lighthouse::model {

// Byte-level vocabulary: 256 byte values, then the specials.
constexpr int64_t kBos = 256;
constexpr int64_t kEos = 257;
constexpr int64_t kPad = 258;
constexpr int64_t kVocab = 259;

enum class AttentionMode { Dense, Lighthouse };
std::string mode_name(AttentionMode m);  // "dense" | "lighthouse"
// Sets *error (naming the choices) when `name` is neither.
AttentionMode parse_mode(const std::string& name, std::string* error);

// How a Lighthouse layer combines the scatter's contributions at a position (SPEC.md §6 sums
// up to L of them). Mean divides the op's output by that count per position and head, so the
// output is a convex combination of values like dense attention's (docs/stability.md).
enum class LighthouseCombine { Sum, Mean };
std::string combine_name(LighthouseCombine c);  // "sum" | "mean"
LighthouseCombine parse_combine(const std::string& name, std::string* error);

// Llama 3.1's frequency-dependent RoPE scaling (Hugging Face rope_type "llama3"): wavelengths
// beyond original_context / low_freq_factor are stretched by `factor`, those below
// original_context / high_freq_factor kept, the band between interpolated.
struct RopeScaling {
  bool enabled = false;
  double factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_context = 8192;
};

// The model's own defaults; a run config's preset (train/run_config.h) overrides some.
struct ModelConfig {
  int64_t vocab = kVocab;            // any tokenizer: every positive size is valid
  int64_t d_model = 256;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 4;            // GQA when < n_heads
  int64_t head_dim = 64;
  int64_t ffn_hidden = 512;          // SwiGLU hidden size
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double norm_eps = 1e-5;
  // Always-dense layers. Absent (nullopt): default_dense_layers(n_layers); an empty list: none,
  // so Lighthouse runs in every layer.
  std::optional<std::vector<int64_t>> dense_layers;
  Config lighthouse;                  // L, p, k, m, scorer, SDPA backend of Lighthouse layers
  LighthouseCombine lighthouse_combine = LighthouseCombine::Sum;
  bool activation_checkpointing = false;
  // With activation_checkpointing: false recomputes only the layers whose attention is dense in
  // the current mode; Lighthouse layers keep their activations (their attention saves only the
  // S-slot sub-sequence, so they cost the least memory per recomputed FLOP saved).
  bool recompute_lighthouse_layers = true;
  // Fused CUDA kernels for SwiGLU, RoPE and residual add + RMSNorm (model/fused.h) on CUDA;
  // false: the at:: compositions they replace. CPU runs the compositions either way.
  bool fused_kernels = true;
  // q/k/v and gate/up projections as one autograd node each (model/grouped_linear.h), whose
  // backward sums the input gradient inside the matrix products; false: separate linears,
  // their input gradients summed by autograd. Every device.
  bool grouped_projections = true;
};

// The first invalid value of cfg, its parameter named by its config key (model.d_model, ...,
// lighthouse.topk): the one validation of a model's configuration, used by the model's
// constructor and by the run config's validation.
Issue check(const ModelConfig& cfg);

// The default dense layers of an n-layer model: {0, 1, n-2, n-1} within [0, n), sorted.
std::vector<int64_t> default_dense_layers(int64_t n_layers);
// Layers that stay dense, sorted: cfg.dense_layers, or the default when it is absent.
std::vector<int64_t> resolved_dense_layers(const ModelConfig& cfg);

struct RopeTables;  // layers.h

class LlamaImpl : public torch::nn::Module {
 public:
  explicit LlamaImpl(const ModelConfig& cfg);

  // tokens [B, N] int64 -> logits [B, N, vocab] (fp32 master weights; autocast may lower).
  at::Tensor forward(const at::Tensor& tokens);

  // Non-dense layers switch between Lighthouse and dense; parameters are untouched.
  void set_attention_mode(AttentionMode mode);
  AttentionMode attention_mode() const;
  // Limits every dense attention to a causal sliding window of `window` positions (0 = the
  // whole prefix): eval's retrieval control. A stack of n layers sees n x (window - 1) back.
  void set_dense_window(int64_t window);

  const ModelConfig& config() const;

 private:
  // forward's layers and head with model.fused_kernels on CUDA (llama.cpp).
  at::Tensor forward_fused(at::Tensor h, const RopeTables& rope, at::ScalarType act,
                           bool recompute);

  struct State;  // modules, per-layer dense flags, mode, RoPE tables (llama.cpp)
  std::shared_ptr<State> state_;
};
TORCH_MODULE(Llama);

}  // namespace lighthouse::model
