// The Llama decoder: configuration checks, module registration under Hugging Face names,
// initialization, per-layer attention mode and the forward pass (activations optionally
// recomputed in backward).
#include "model/llama.h"

#include <ATen/autocast_mode.h>

#include <algorithm>

#include "model/fused.h"
#include "model/layers.h"
#include "model/recompute.h"

namespace lighthouse::model {

using c10::str;

std::string mode_name(AttentionMode m) {
  return m == AttentionMode::Lighthouse ? "lighthouse" : "dense";
}

AttentionMode parse_mode(const std::string& name, std::string* error) {
  if (name == "lighthouse") return AttentionMode::Lighthouse;
  if (name != "dense") *error = str("must be one of lighthouse | dense, got \"", name, "\"");
  return AttentionMode::Dense;
}

std::string combine_name(LighthouseCombine c) {
  return c == LighthouseCombine::Mean ? "mean" : "sum";
}

LighthouseCombine parse_combine(const std::string& name, std::string* error) {
  if (name == "mean") return LighthouseCombine::Mean;
  if (name != "sum") *error = str("must be one of sum | mean, got \"", name, "\"");
  return LighthouseCombine::Sum;
}

Issue check(const ModelConfig& m) {
  const auto positive = [](const char* key, int64_t v) -> Issue {
    if (v > 0) return {};
    return {key, str("must be positive, got ", v)};
  };
  const std::pair<const char*, int64_t> sizes[] = {{"model.d_model", m.d_model},
                                                   {"model.n_layers", m.n_layers},
                                                   {"model.n_heads", m.n_heads},
                                                   {"model.n_kv_heads", m.n_kv_heads}};
  for (const auto& [key, v] : sizes)
    if (Issue i = positive(key, v); !i.ok()) return i;
  if (m.n_heads % m.n_kv_heads != 0)
    return {"model.n_kv_heads",
            str("must divide model.n_heads = ", m.n_heads, ", got ", m.n_kv_heads)};
  if (Issue i = positive("model.head_dim", m.head_dim); !i.ok()) return i;
  if (m.head_dim % 2 != 0) return {"model.head_dim", str("must be even (RoPE), got ", m.head_dim)};
  if (Issue i = positive("model.ffn_hidden", m.ffn_hidden); !i.ok()) return i;
  if (!(m.rope_theta > 1.0)) return {"model.rope_theta", str("must be > 1, got ", m.rope_theta)};
  if (!(m.norm_eps > 0.0 && m.norm_eps < 1.0))
    return {"model.norm_eps", str("must be in (0, 1), got ", m.norm_eps)};
  if (m.vocab < 1 || m.vocab > (int64_t{1} << 32))
    return {"model.vocab_size", str("must be in [1, 2^32], got ", m.vocab)};
  const RopeScaling& r = m.rope_scaling;
  if (r.enabled) {
    if (!(r.factor >= 1.0))
      return {"model.rope_scaling_factor", str("must be >= 1, got ", r.factor)};
    if (!(r.low_freq_factor > 0.0))
      return {"model.rope_low_freq_factor", str("must be > 0, got ", r.low_freq_factor)};
    if (!(r.high_freq_factor > r.low_freq_factor))
      return {"model.rope_high_freq_factor",
              str("must be > model.rope_low_freq_factor = ", r.low_freq_factor, ", got ",
                  r.high_freq_factor)};
    if (Issue i = positive("model.rope_original_context", r.original_context); !i.ok()) return i;
  }
  const std::vector<int64_t> dense = m.dense_layers.value_or(std::vector<int64_t>{});
  for (size_t i = 0; i < dense.size(); ++i) {
    const int64_t l = dense[i];
    if (l < 0 || l >= m.n_layers)
      return {"model.dense_layers", str("layer ", l, " is outside [0, ", m.n_layers, ")")};
    for (size_t j = 0; j < i; ++j)
      if (dense[j] == l) return {"model.dense_layers", str("layer ", l, " is listed twice")};
  }
  const Issue lh = lighthouse::check(m.lighthouse);
  if (!lh.ok()) return {"lighthouse." + lh.parameter, lh.message};
  return {};
}

std::vector<int64_t> default_dense_layers(int64_t n) {
  std::vector<int64_t> layers;
  for (const int64_t i : {int64_t{0}, int64_t{1}, n - 2, n - 1})
    if (i >= 0 && i < n) layers.push_back(i);
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

std::vector<int64_t> resolved_dense_layers(const ModelConfig& cfg) {
  const int64_t n = cfg.n_layers;
  if (!cfg.dense_layers) return default_dense_layers(n);
  std::vector<int64_t> layers = *cfg.dense_layers;
  for (int64_t i : layers) {
    TORCH_CHECK_VALUE(i >= 0 && i < n, "model.dense_layers entries must be in [0, ",
                      "model.n_layers = ", n, "), got ", i);
  }
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
  const Issue issue = check(cfg);
  TORCH_CHECK_VALUE(issue.ok(), issue.parameter, ": ", issue.message);
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

namespace {

// Whether a layer's activations are recomputed in backward (model.activation_checkpointing,
// model.recompute_lighthouse_layers).
bool recomputes(const ModelConfig& cfg, bool recompute, bool lighthouse) {
  return recompute && (!lighthouse || cfg.recompute_lighthouse_layers);
}

}  // namespace

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
  const bool recompute = s.cfg.activation_checkpointing && torch::GradMode::is_enabled();
  if (s.cfg.fused_kernels && h.is_cuda()) return forward_fused(h, rope, act, recompute);
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const std::shared_ptr<DecoderLayerImpl> layer = s.layers[i].ptr();
    const bool lighthouse = s.mode == AttentionMode::Lighthouse && !s.always_dense[i];
    if (recomputes(s.cfg, recompute, lighthouse)) {
      auto fn = [layer, rope, lighthouse](const at::Tensor& x) {
        return layer->forward(x, rope, lighthouse);
      };
      h = recomputed(fn, h, layer->parameters());
    } else {
      h = layer->forward(h, rope, lighthouse);
    }
  }
  return s.lm_head(s.norm(h).to(act));  // [B, N, vocab]
}

// The layers in their deferred form (DecoderLayerImpl::forward_deferred): the stream travels
// as (h, m) with h + m pending, each add fused with the norm after it, the last with the
// final norm.
at::Tensor LlamaImpl::forward_fused(at::Tensor h, const RopeTables& rope, at::ScalarType act,
                                    bool recompute) {
  State& s = *state_;
  at::Tensor m;  // [B, N, d_model]: the previous layer's MLP output (none before layer 0)
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const std::shared_ptr<DecoderLayerImpl> layer = s.layers[i].ptr();
    const bool lighthouse = s.mode == AttentionMode::Lighthouse && !s.always_dense[i];
    if (recomputes(s.cfg, recompute, lighthouse)) {
      auto fn = [layer, rope, lighthouse](const std::vector<at::Tensor>& in) {
        auto [a, b] = layer->forward_deferred(in[0], in.size() > 1 ? in[1] : at::Tensor(), rope,
                                              lighthouse);
        return std::vector<at::Tensor>{a, b};
      };
      const std::vector<at::Tensor> out =
          recomputed(fn, m.defined() ? std::vector<at::Tensor>{h, m} : std::vector<at::Tensor>{h},
                     layer->parameters());
      h = out[0];
      m = out[1];
    } else {
      std::tie(h, m) = layer->forward_deferred(h, m, rope, lighthouse);
    }
  }
  const RMSNormImpl& norm = *s.norm;
  return s.lm_head(add_rms_norm(h, m, norm.weight, norm.eps(), act).y);  // [B, N, vocab]
}

void LlamaImpl::set_attention_mode(AttentionMode mode) { state_->mode = mode; }

AttentionMode LlamaImpl::attention_mode() const { return state_->mode; }

void LlamaImpl::set_dense_window(int64_t window) {
  TORCH_CHECK(window >= 0, "set_dense_window: window must be >= 0 (0 = none), got ", window);
  for (auto& layer : state_->layers) layer->self_attn->set_dense_window(window);
}

const ModelConfig& LlamaImpl::config() const { return state_->cfg; }

}  // namespace lighthouse::model
