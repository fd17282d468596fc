// Building blocks of the Llama decoder: RMSNorm, rotary embeddings (Hugging Face
// "rotate_half" layout, so exported weights need no permutation), GQA self-attention that
// runs dense or Lighthouse, the SwiGLU MLP and one pre-norm decoder layer. Submodule names
// match Hugging Face's LlamaForCausalLM so export is a rename with a "model." prefix.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "lighthouse/lighthouse.h"
#include "model/llama.h"

namespace lighthouse::dist {
class Group;
}

namespace lighthouse::model {

// y = weight * x / sqrt(mean(x^2) + eps) over the last dimension.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);  // [..., dim] -> [..., dim]
  double eps() const { return eps_; }

  at::Tensor weight;  // [dim]

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

// cos and signed sin tables of one sequence length, device and dtype.
struct RopeTables {
  at::Tensor cos;  // [N, 1, D]: cos(t * f_j), f repeated over both halves
  at::Tensor sin;  // [N, 1, D]: -sin(t * f_j) on the first half, +sin on the second
};

// Caches RopeTables per (N, device, dtype); the frequencies follow Hugging Face
// (inv_freq_j = theta^(-2j/D), rescaled by `scaling` when enabled, angles computed in fp32).
class RopeCache {
 public:
  RopeCache(int64_t head_dim, double theta, const RopeScaling& scaling = {});
  RopeTables get(int64_t n, const c10::Device& device, at::ScalarType dtype);

 private:
  struct Entry {
    int64_t n;
    c10::Device device;
    at::ScalarType dtype;
    RopeTables tables;
  };
  int64_t head_dim_;
  double theta_;
  RopeScaling scaling_;
  std::vector<Entry> entries_;  // most recent last, at most kMaxEntries
  static constexpr size_t kMaxEntries = 4;
};

// x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1] (halves of the last dim); kernel:
// the fused CUDA kernel (model/fused.h) on CUDA tensors.
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& rope,
                      bool kernel = false);  // [B, N, H, D]

// Causal attention limited to a sliding window (eval's retrieval control, docs/eval.md):
// position i attends to positions j with i - window < j <= i. q [B, N, H, D], k and v
// [B, N, Hkv, D] (GQA: query head h reads key head h / (H / Hkv)) -> [B, N, H, D]. Runs in
// query blocks of `window` positions, so memory grows with N x window, not N^2.
at::Tensor sliding_window_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    int64_t window);

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const ModelConfig& cfg);
  // x [B, N, d_model] -> [B, N, d_model]; lighthouse picks the Lighthouse op over dense SDPA.
  at::Tensor forward(const at::Tensor& x, const RopeTables& rope, bool lighthouse);

  // Runs the attention over a context-parallel group (set_context_parallel below).
  void set_context_parallel(dist::Group* group) { cp_ = group; }
  // Dense attention within a sliding window of `window` positions (0 = the whole prefix).
  void set_dense_window(int64_t window) { window_ = window; }

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  int64_t n_heads_, n_kv_heads_, head_dim_;
  Config lighthouse_;
  LighthouseCombine combine_;
  bool fused_;    // model.fused_kernels
  bool grouped_;  // model.grouped_projections: q, k, v from one grouped_linear
  dist::Group* cp_ = nullptr;
  int64_t window_ = 0;  // set_dense_window
  RopeCache cp_rope_;  // tables of the whole sequence, for the global positions under CP
};
TORCH_MODULE(Attention);

// Context parallel (SPEC.md §10) for every attention layer of `model`: with a group of W > 1
// ranks, the model's input is this rank's part of each sequence in the layout of
// dist/cp_layout.h (tokens [B, 2n] of a sequence of 2Wn); the layers rotate q and k at the
// global positions and attend over the group (dense: dist::ring_dense_attention; Lighthouse:
// dist::cp_attention). nullptr (or one rank): one device. The group must outlive the use.
void set_context_parallel(torch::nn::Module& model, dist::Group* group);

// Contributions the scatter sums at every position and query head under `plan` (SPEC.md §6:
// levels l whose entry floor((t+1)/p^l) - 1 >= 0 was emitted), 0..L: [B, N, H] int64.
at::Tensor scatter_fan_in(const Plan& plan, const Config& cfg, int64_t n);

// down(silu(gate(x)) * up(x)).
class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const ModelConfig& cfg);
  at::Tensor forward(const at::Tensor& x);  // [B, N, d_model] -> [B, N, d_model]

  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};

 private:
  bool fused_;    // model.fused_kernels: the SwiGLU kernel on CUDA
  bool grouped_;  // model.grouped_projections: gate, up from one grouped_linear
};
TORCH_MODULE(Mlp);

// h = x + attn(norm(x)); out = h + mlp(norm(h)).
class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const ModelConfig& cfg);
  at::Tensor forward(const at::Tensor& x, const RopeTables& rope, bool lighthouse);
  // The fused layers' form (model.fused_kernels on CUDA): the input is the stream x + m, m the
  // previous layer's MLP output still to be added (undefined: none), and the output (h,
  // mlp(norm(h))) leaves the last add to the next norm, so every residual add runs in the
  // kernel of the norm that follows it (model/fused.h).
  std::pair<at::Tensor, at::Tensor> forward_deferred(const at::Tensor& x, const at::Tensor& m,
                                                     const RopeTables& rope, bool lighthouse);

  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};

 private:
  bool fused_;  // model.fused_kernels: forward runs forward_deferred on CUDA
};
TORCH_MODULE(DecoderLayer);

}  // namespace lighthouse::model
