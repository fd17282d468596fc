// The Llama decoder: configuration checks, module registration under Hugging Face names,
// initialization, per-layer attention mode and the forward pass (optionally checkpointed).
#include "model/llama.h"

#include <ATen/autocast_mode.h>

#include <algorithm>

#include "model/checkpoint.h"
#include "model/layers.h"

namespace lighthouse::model {
namespace {

void check_config(const ModelConfig& cfg) {
  TORCH_CHECK_VALUE(cfg.vocab > 0, "model.vocab_size must be > 0, got ", cfg.vocab);
  TORCH_CHECK_VALUE(cfg.d_model > 0, "model.d_model must be > 0, got ", cfg.d_model);
  TORCH_CHECK_VALUE(cfg.n_layers > 0, "model.n_layers must be > 0, got ", cfg.n_layers);
  TORCH_CHECK_VALUE(cfg.n_heads > 0, "model.n_heads must be > 0, got ", cfg.n_heads);
  TORCH_CHECK_VALUE(cfg.n_kv_heads > 0 && cfg.n_heads % cfg.n_kv_heads == 0,
                    "model.n_kv_heads must divide model.n_heads = ", cfg.n_heads, ", got ",
                    cfg.n_kv_heads);
  TORCH_CHECK_VALUE(cfg.head_dim > 0 && cfg.head_dim % 2 == 0,
                    "model.head_dim must be even and > 0 (RoPE rotates pairs), got ",
                    cfg.head_dim);
  TORCH_CHECK_VALUE(cfg.ffn_hidden > 0, "model.ffn_hidden must be > 0, got ", cfg.ffn_hidden);
  TORCH_CHECK_VALUE(cfg.rope_theta > 0, "model.rope_theta must be > 0, got ", cfg.rope_theta);
  TORCH_CHECK_VALUE(cfg.norm_eps > 0, "model.norm_eps must be > 0, got ", cfg.norm_eps);
  const std::string err = validate(cfg.lighthouse);
  TORCH_CHECK_VALUE(err.empty(), err);
}

}  // namespace

std::vector<int64_t> resolved_dense_layers(const ModelConfig& cfg) {
  const int64_t n = cfg.n_layers;
  std::vector<int64_t> layers = cfg.dense_layers;
  if (layers.empty()) layers = {0, 1, n - 2, n - 1};
  for (int64_t i : cfg.dense_layers) {
    TORCH_CHECK_VALUE(i >= 0 && i < n, "model.dense_layers entries must be in [0, ",
                      "model.n_layers = ", n, "), got ", i);
  }
  layers.erase(std::remove_if(layers.begin(), layers.end(),
                              [n](int64_t i) { return i < 0 || i >= n; }),
               layers.end());
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

struct LlamaImpl::State {
  explicit State(const ModelConfig& c) : cfg(c), rope(c.head_dim, c.rope_theta, c.rope_scaling) {}

  ModelConfig cfg;
  AttentionMode mode = AttentionMode::Dense;
  torch::nn::Embedding embed_tokens{nullptr};
  std::vector<DecoderLayer> layers;
  std::vector<bool> always_dense;  // [n_layers]
  RMSNorm norm{nullptr};
  torch::nn::Linear lm_head{nullptr};
  RopeCache rope;
};

LlamaImpl::LlamaImpl(const ModelConfig& cfg) {
  check_config(cfg);
  state_ = std::make_shared<State>(cfg);
  State& s = *state_;
  s.embed_tokens =
      register_module("embed_tokens", torch::nn::Embedding(cfg.vocab, cfg.d_model));
  torch::nn::ModuleList list;
  for (int64_t i = 0; i < cfg.n_layers; ++i) {
    s.layers.push_back(DecoderLayer(cfg));
    list->push_back(s.layers.back());
  }
  register_module("layers", list);
  s.norm = register_module("norm", RMSNorm(cfg.d_model, cfg.norm_eps));
  s.lm_head = register_module(
      "lm_head", torch::nn::Linear(torch::nn::LinearOptions(cfg.d_model, cfg.vocab).bias(false)));

  s.always_dense.assign(cfg.n_layers, false);
  for (int64_t i : resolved_dense_layers(cfg)) s.always_dense[i] = true;

  // normal(0, 0.02) for every matrix (embedding, projections, head); norms stay ones.
  torch::NoGradGuard no_grad;
  for (at::Tensor& p : parameters()) {
    if (p.dim() >= 2) p.normal_(0.0, 0.02);
  }
}

at::Tensor LlamaImpl::forward(const at::Tensor& tokens) {
  State& s = *state_;
  TORCH_CHECK_VALUE(tokens.dim() == 2, "tokens must be [B, N], got sizes ", tokens.sizes());
  TORCH_CHECK_TYPE(tokens.scalar_type() == at::kLong || tokens.scalar_type() == at::kInt,
                   "tokens must be int64 or int32, got ", tokens.scalar_type());
  at::Tensor h = s.embed_tokens(tokens);  // [B, N, d_model]
  const at::DeviceType dev = h.device().type();
  const at::ScalarType act = at::autocast::is_autocast_enabled(dev)
                                 ? at::autocast::get_autocast_dtype(dev)
                                 : h.scalar_type();  // dtype of the q/k projections
  const RopeTables rope = s.rope.get(tokens.size(1), h.device(), act);
  const bool checkpoint = s.cfg.activation_checkpointing && torch::GradMode::is_enabled();
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const std::shared_ptr<DecoderLayerImpl> layer = s.layers[i].ptr();
    const bool lighthouse = s.mode == AttentionMode::Lighthouse && !s.always_dense[i];
    if (checkpoint) {
      auto fn = [layer, rope, lighthouse](const at::Tensor& x) {
        return layer->forward(x, rope, lighthouse);
      };
      h = checkpointed(fn, h, layer->parameters());
    } else {
      h = layer->forward(h, rope, lighthouse);
    }
  }
  return s.lm_head(s.norm(h).to(act));  // [B, N, vocab]
}

void LlamaImpl::set_attention_mode(AttentionMode mode) { state_->mode = mode; }

AttentionMode LlamaImpl::attention_mode() const { return state_->mode; }

const ModelConfig& LlamaImpl::config() const { return state_->cfg; }

}  // namespace lighthouse::model
