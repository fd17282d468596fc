// RMSNorm, RoPE tables and application, GQA attention (dense or Lighthouse), SwiGLU MLP and
// the decoder layer. Activations keep the [B, N, H, D] layout the attention ops take, so
// projections are views, never transposes.
#include "model/layers.h"

#include <algorithm>
#include <vector>

#include "dist/context_parallel.h"
#include "dist/cp_layout.h"
#include "dist/ring_attention.h"
#include "lighthouse/lighthouse.h"
#include "model/fused.h"
#include "model/grouped_linear.h"

namespace lighthouse::model {
namespace {

torch::nn::Linear linear(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

// The projections of x by `ps`: one grouped_linear node when `grouped`, else separate linears.
std::vector<at::Tensor> project(const at::Tensor& x,
                                std::initializer_list<torch::nn::Linear*> ps,
                                bool grouped) {
  std::vector<at::Tensor> y;
  if (!grouped) {
    for (torch::nn::Linear* p : ps) y.push_back((*p)->forward(x));
    return y;
  }
  std::vector<at::Tensor> ws;
  for (torch::nn::Linear* p : ps) ws.push_back(compute_weight((*p)->weight, x));
  return grouped_linear(x, ws);
}

}  // namespace

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  return at::rms_norm(x, {weight.size(0)}, weight, eps_);
}

RopeCache::RopeCache(int64_t head_dim, double theta, const RopeScaling& scaling)
    : head_dim_(head_dim), theta_(theta), scaling_(scaling) {}

namespace {

// Llama 3.1's rescaling of the inverse frequencies (RopeScaling, llama.h), in fp32 as
// Hugging Face computes it.
at::Tensor llama3_inv_freq(const at::Tensor& inv_freq, const RopeScaling& s) {  // [D/2]
  const double old = static_cast<double>(s.original_context);
  const double low_wavelen = old / s.low_freq_factor, high_wavelen = old / s.high_freq_factor;
  const at::Tensor wavelen = 2.0 * M_PI / inv_freq;                              // [D/2]
  at::Tensor scaled = at::where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq);
  const at::Tensor smooth =
      (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);  // [D/2]
  const at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;      // [D/2]
  const at::Tensor medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen);
  return at::where(medium, smoothed, scaled);
}

}  // namespace

RopeTables RopeCache::get(int64_t n, const c10::Device& device, at::ScalarType dtype) {
  for (const Entry& e : entries_) {
    if (e.n == n && e.device == device && e.dtype == dtype) return e.tables;
  }
  const auto f32 = torch::TensorOptions().dtype(at::kFloat).device(device);
  const double dim = static_cast<double>(head_dim_);
  at::Tensor exponent = torch::arange(0, head_dim_, 2, f32) / dim;       // [D/2]
  at::Tensor inv_freq = 1.0 / at::pow(theta_, exponent);                  // [D/2]
  if (scaling_.enabled) inv_freq = llama3_inv_freq(inv_freq, scaling_);
  at::Tensor angles = at::outer(torch::arange(n, f32), inv_freq);        // [N, D/2]
  at::Tensor c = angles.cos();                                           // [N, D/2]
  at::Tensor s = angles.sin();                                           // [N, D/2]
  RopeTables t;
  t.cos = at::cat({c, c}, -1).unsqueeze(1).to(dtype).contiguous();       // [N, 1, D]
  t.sin = at::cat({-s, s}, -1).unsqueeze(1).to(dtype).contiguous();      // [N, 1, D]
  if (entries_.size() == kMaxEntries) entries_.erase(entries_.begin());
  entries_.push_back(Entry{n, device, dtype, std::move(t)});
  return entries_.back().tables;
}

at::Tensor sliding_window_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    int64_t window) {
  TORCH_CHECK(window > 0, "sliding_window_attention: window must be positive, got ", window);
  const int64_t N = q.size(1), group = q.size(2) / k.size(2);
  const at::Tensor qt = q.transpose(1, 2);                                  // [B, H, N, D]
  const at::Tensor kt = k.transpose(1, 2).repeat_interleave(group, 1);      // [B, H, N, D]
  const at::Tensor vt = v.transpose(1, 2).repeat_interleave(group, 1);      // [B, H, N, D]
  const auto pos = [&](int64_t a, int64_t b) {
    return at::arange(a, b, at::TensorOptions().dtype(at::kLong).device(q.device()));
  };
  std::vector<at::Tensor> out;
  for (int64_t s = 0; s < N; s += window) {
    const int64_t e = std::min(s + window, N), ks = std::max<int64_t>(0, s - window + 1);
    const at::Tensor i = pos(s, e).unsqueeze(1), j = pos(ks, e).unsqueeze(0);
    const at::Tensor allowed = (j <= i).logical_and(i - j < window);  // [e - s, e - ks]
    out.push_back(at::scaled_dot_product_attention(qt.slice(2, s, e), kt.slice(2, ks, e),
                                                   vt.slice(2, ks, e), allowed));  // [B, H, e-s, D]
  }
  return at::cat(out, 2).transpose(1, 2).contiguous();  // [B, N, H, D]
}

at::Tensor apply_rope(const at::Tensor& x, const RopeTables& rope, bool kernel) {
  TORCH_CHECK_TYPE(x.scalar_type() == rope.cos.scalar_type(), "apply_rope: x dtype ",
                   x.scalar_type(), " must equal the RoPE tables' ", rope.cos.scalar_type());
  return model::rope(x, rope.cos, rope.sin, kernel);
}

AttentionImpl::AttentionImpl(const ModelConfig& cfg)
    : n_heads_(cfg.n_heads),
      n_kv_heads_(cfg.n_kv_heads),
      head_dim_(cfg.head_dim),
      lighthouse_(cfg.lighthouse),
      combine_(cfg.lighthouse_combine),
      fused_(cfg.fused_kernels),
      grouped_(cfg.grouped_projections),
      cp_rope_(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling) {
  q_proj = register_module("q_proj", linear(cfg.d_model, cfg.n_heads * cfg.head_dim));
  k_proj = register_module("k_proj", linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim));
  v_proj = register_module("v_proj", linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim));
  o_proj = register_module("o_proj", linear(cfg.n_heads * cfg.head_dim, cfg.d_model));
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const RopeTables& rope, bool lighthouse) {
  const int64_t B = x.size(0), N = x.size(1);
  const int64_t H = n_heads_, Hkv = n_kv_heads_, D = head_dim_;
  RopeTables rot = rope;  // [N, 1, D] of this rank's positions
  if (cp_) {             // the global positions of this rank's two chunks
    const int W = cp_->size();
    const RopeTables all = cp_rope_.get(W * N, x.device(), rope.cos.scalar_type());
    const at::Tensor pos = dist::cp_positions(N / 2, cp_->rank(), W, x.device());  // [N]
    rot = {all.cos.index_select(0, pos), all.sin.index_select(0, pos)};
  }
  const std::vector<at::Tensor> qkv = project(x, {&q_proj, &k_proj, &v_proj}, grouped_);
  at::Tensor q = apply_rope(qkv[0].view({B, N, H, D}), rot, fused_);    // [B, N, H, D]
  at::Tensor k = apply_rope(qkv[1].view({B, N, Hkv, D}), rot, fused_);  // [B, N, Hkv, D]
  at::Tensor v = qkv[2].view({B, N, Hkv, D});                          // [B, N, Hkv, D]
  at::Tensor o;  // [B, N, H, D]
  if (cp_) {  // N is this rank's part of the sequence (SPEC.md §10)
    if (!lighthouse) {
      o = dist::ring_dense_attention(*cp_, q, k, v);
    } else if (combine_ == LighthouseCombine::Sum) {
      o = dist::cp_attention(*cp_, q, k, v, lighthouse_);
    } else {
      at::Tensor count;  // [B, N, H]
      o = dist::cp_attention(*cp_, q, k, v, lighthouse_, nullptr, &count);
      o = o / count.clamp_min(1).unsqueeze(-1).to(q.dtype());
    }
  } else if (!lighthouse && window_ > 0) {
    o = sliding_window_attention(q, k, v, window_);
  } else if (!lighthouse) {
    o = lighthouse::dense_attention(q, k, v, lighthouse_.backend);
  } else if (combine_ == LighthouseCombine::Sum) {
    o = lighthouse::attention(q, k, v, lighthouse_);
  } else {
    const Plan plan = lighthouse::plan(q, k, v, lighthouse_);
    const at::Tensor count = scatter_fan_in(plan, lighthouse_, N).clamp_min(1);  // [B, N, H]
    o = lighthouse::attention(q, k, v, plan, lighthouse_, /*check_plan=*/false) /
        count.unsqueeze(-1).to(q.dtype());
  }
  return o_proj(o.reshape({B, N, H * D}));  // [B, N, d_model]
}

void set_context_parallel(torch::nn::Module& model, dist::Group* group) {
  dist::Group* g = group && group->size() > 1 ? group : nullptr;
  for (const auto& m : model.modules())
    if (auto* a = m->as<AttentionImpl>()) a->set_context_parallel(g);
}

at::Tensor scatter_fan_in(const Plan& plan, const Config& cfg, int64_t n) {
  Geometry g;
  std::string err;
  TORCH_CHECK_VALUE(make_geometry(cfg, n, &g, &err), err);
  const auto opts = plan.inverse.options();                        // int64 on the plan's device
  const at::Tensor t = torch::arange(n, opts);                      // [N]
  at::Tensor count = torch::zeros({plan.inverse.size(0), plan.inverse.size(1), n}, opts);
  for (int64_t l = 0; l < g.L; ++l) {
    if (g.level_len[l] == 0) continue;  // a sequence shorter than the level's window
    const at::Tensor i = at::floor_divide(t + 1, g.window[l]) - 1;  // [N] entry of level l
    const at::Tensor exists = i.ge(0) & i.lt(g.level_len[l]);       // [N] (SPEC.md §6)
    const at::Tensor emitted =
        plan.inverse.index_select(2, i.clamp(0, g.level_len[l] - 1) + g.level_offset[l]).ge(0) &
        exists;                                                      // [B, H, N]
    count += emitted;
  }
  return count.permute({0, 2, 1});  // [B, N, H]
}

MlpImpl::MlpImpl(const ModelConfig& cfg)
    : fused_(cfg.fused_kernels), grouped_(cfg.grouped_projections) {
  gate_proj = register_module("gate_proj", linear(cfg.d_model, cfg.ffn_hidden));
  up_proj = register_module("up_proj", linear(cfg.d_model, cfg.ffn_hidden));
  down_proj = register_module("down_proj", linear(cfg.ffn_hidden, cfg.d_model));
}

at::Tensor MlpImpl::forward(const at::Tensor& x) {
  const std::vector<at::Tensor> gu = project(x, {&gate_proj, &up_proj}, grouped_);
  const at::Tensor &g = gu[0], &u = gu[1];  // [B, N, ffn_hidden]
  return down_proj(fused_ && g.is_cuda() ? swiglu(g, u) : at::silu(g) * u);  // [B, N, d_model]
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& cfg) : fused_(cfg.fused_kernels) {
  self_attn = register_module("self_attn", Attention(cfg));
  mlp = register_module("mlp", Mlp(cfg));
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.d_model, cfg.norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(cfg.d_model, cfg.norm_eps));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const RopeTables& rope,
                                     bool lighthouse) {
  if (fused_ && x.is_cuda()) {
    const auto [h, m] = forward_deferred(x, at::Tensor(), rope, lighthouse);
    return h + m;  // [B, N, d_model]
  }
  // Norm outputs go to the compute dtype once (the RoPE tables carry it: autocast's or the
  // weights'), instead of autocast casting them again for each projection that reads them.
  const at::ScalarType act = rope.cos.scalar_type();
  at::Tensor a = input_layernorm(x).to(act);                         // [B, N, d_model]
  at::Tensor h = x + self_attn(a, rope, lighthouse);                 // [B, N, d_model]
  return h + mlp(post_attention_layernorm(h).to(act));               // [B, N, d_model]
}

std::pair<at::Tensor, at::Tensor> DecoderLayerImpl::forward_deferred(const at::Tensor& x,
                                                                     const at::Tensor& m,
                                                                     const RopeTables& rope,
                                                                     bool lighthouse) {
  const at::ScalarType act = rope.cos.scalar_type();
  const RMSNormImpl &in = *input_layernorm, &post = *post_attention_layernorm;
  AddRmsNorm s{x, at::Tensor()};  // the stream x + m and its norm: [B, N, d_model] each
  if (m.defined()) {
    s = add_rms_norm(x, m, in.weight, in.eps(), act);
  } else {
    s.y = input_layernorm(x).to(act);
  }
  const AddRmsNorm hb = add_rms_norm(s.h, self_attn(s.y, rope, lighthouse), post.weight,
                                     post.eps(), act);  // h = stream + attn, its norm
  return {hb.h, mlp(hb.y)};                              // [B, N, d_model] each
}

}  // namespace lighthouse::model
