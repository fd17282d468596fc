// stability_probe: trains a config step by step (the trainer's own train_step) and, before each
// step, measures on that step's batch what the Lighthouse layers do differently from dense:
// the loss in both modes, and per Lighthouse layer the RMS of the attention output (before
// o_proj) in both modes, split by how many pyramid levels contribute to a position (the
// scatter's fan-in, 0..L). One JSON line per step on stdout. The measurements of
// docs/stability.md come from this program.
//
//   stability_probe [--every N] [key=value ...]      (keys as for `lighthouse train --set`)
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "lighthouse/lighthouse.h"
#include "model/layers.h"
#include "train/trainer.h"

namespace lt = lighthouse::train;
namespace lm = lighthouse::model;

namespace {

template <typename T>
std::shared_ptr<T> module_at(lm::Llama& model, const std::string& name) {
  auto mods = model->named_modules();
  auto m = std::dynamic_pointer_cast<T>(mods[name]);
  TORCH_CHECK(m, "no module ", name);
  return m;
}

// Number of levels whose entry covering position t was emitted: [B, H, N] int64.
at::Tensor fan_in(const lighthouse::Plan& plan, const lighthouse::Config& cfg, int64_t N) {
  lighthouse::Geometry g;
  std::string err;
  TORCH_CHECK(lighthouse::make_geometry(cfg, N, &g, &err), err);
  const int64_t B = plan.inverse.size(0), H = plan.inverse.size(1);
  auto count = torch::zeros({B, H, N}, torch::kLong);
  auto t = torch::arange(N, torch::kLong);
  for (int64_t l = 0; l < g.L; ++l) {
    auto i = torch::div(t + 1, g.window[l], "floor") - 1;     // [N]
    auto valid = i.ge(0);                                     // [N]
    auto idx = (i.clamp_min(0) + g.level_offset[l]).view({1, 1, N}).expand({B, H, N});
    auto emitted = plan.inverse.gather(2, idx).ge(0) & valid.view({1, 1, N});
    count += emitted.to(torch::kLong);
  }
  return count;
}

double rms(const at::Tensor& x) { return x.pow(2).mean().sqrt().item<double>(); }

// Largest causal attention logit q_t . k_s / sqrt(D), s <= t, over batch and heads.
double max_logit(const at::Tensor& q, const at::Tensor& k) {  // [B, N, H, D], [B, N, Hkv, D]
  const int64_t N = q.size(1), H = q.size(2), D = q.size(3), G = H / k.size(2);
  auto kk = k.repeat_interleave(G, 2);                                  // [B, N, H, D]
  auto s = at::einsum("bthd,bshd->bhts", {q, kk}) / std::sqrt(double(D));  // [B, H, N, N]
  auto mask = torch::ones({N, N}, torch::kBool).triu(1);
  return s.masked_fill(mask, -1e30).max().item<double>();
}

// Loss of tokens [B, N + 1] under a variant of the attention of the non-dense layers:
// "dense", "lighthouse" (the op), "lighthouse-layer-I" (Lighthouse only in layer I),
// "lighthouse-mean" (the op's output divided by the fan-in of each position and head).
double variant_loss(lm::Llama& model, const lt::RunConfig& c, const at::Tensor& batch,
                    const std::string& variant) {
  torch::NoGradGuard ng;
  const auto mcfg = lt::to_model_config(c);
  const auto dense = lm::resolved_dense_layers(mcfg);
  const int64_t N = batch.size(1) - 1;
  auto inputs = batch.narrow(1, 0, N).contiguous();   // [B, N]
  auto targets = batch.narrow(1, 1, N).contiguous();  // [B, N]
  lm::RopeCache rope_cache(mcfg.head_dim, mcfg.rope_theta);
  auto rope = rope_cache.get(N, torch::kCPU, at::kFloat);
  at::Tensor h = module_at<torch::nn::EmbeddingImpl>(model, "embed_tokens")->forward(inputs);
  for (int64_t li = 0; li < c.model.n_layers; ++li) {
    auto layer = module_at<lm::DecoderLayerImpl>(model, "layers." + std::to_string(li));
    bool lh = std::find(dense.begin(), dense.end(), li) == dense.end() && variant != "dense";
    if (variant.rfind("lighthouse-layer-", 0) == 0) lh = lh && variant.substr(17) == std::to_string(li);
    auto attn = layer->self_attn;
    auto a = layer->input_layernorm(h);  // [B, N, d]
    const int64_t B = a.size(0), H = c.model.n_heads, Hkv = c.model.n_kv_heads,
                  D = c.model.head_dim;
    auto q = lm::apply_rope(attn->q_proj(a).view({B, N, H, D}), rope);
    auto k = lm::apply_rope(attn->k_proj(a).view({B, N, Hkv, D}), rope);
    auto v = attn->v_proj(a).view({B, N, Hkv, D});
    at::Tensor o;
    if (!lh) {
      o = lighthouse::dense_attention(q, k, v);
    } else {
      auto plan = lighthouse::plan(q, k, mcfg.lighthouse);
      o = lighthouse::attention(q, k, v, plan, mcfg.lighthouse);  // [B, N, H, D]
      if (variant == "lighthouse-mean") {
        auto cnt = fan_in(plan, mcfg.lighthouse, N).permute({0, 2, 1}).clamp_min(1);  // [B, N, H]
        o = o / cnt.unsqueeze(-1).to(o.scalar_type());
      }
    }
    h = h + attn->o_proj(o.reshape({B, N, H * D}));
    h = h + layer->mlp(layer->post_attention_layernorm(h));
  }
  auto norm = module_at<lm::RMSNormImpl>(model, "norm");
  auto head = module_at<torch::nn::LinearImpl>(model, "lm_head");
  auto logits = head->forward(norm->forward(h));  // [B, N, V]
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(2)}),
                                              targets.reshape({-1}))
      .item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  lt::Launch launch;
  int64_t every = 1, dump = -1, eval_cursor = -1;
  std::string blend_ckpt, blend_pattern;
  double blend_alpha = 0;
  std::string dump_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--every" && i + 1 < argc) {
      every = std::atoll(argv[++i]);
      continue;
    }
    if (a == "--blend" && i + 3 < argc) {  // --blend CKPT ALPHA PATTERN: w += alpha (w_ckpt - w)
      blend_ckpt = argv[++i];
      blend_alpha = std::atof(argv[++i]);
      blend_pattern = argv[++i];
      continue;
    }
    if (a == "--eval-cursor" && i + 1 < argc) {  // losses of variants on one batch, then exit
      eval_cursor = std::atoll(argv[++i]);
      continue;
    }
    if (a == "--dump" && i + 2 < argc) {  // --dump STEP FILE: per-position tensors of a step
      dump = std::atoll(argv[++i]);
      dump_path = argv[++i];
      continue;
    }
    const auto eq = a.find('=');
    if (eq == std::string::npos) {
      std::cerr << "stability_probe: expected key=value, got " << a << "\n";
      return 2;
    }
    launch.overrides.emplace_back(a.substr(0, eq), a.substr(eq + 1));
  }
  launch.overrides.emplace_back("val.every", "0");
  auto s = lt::open_session(launch);
  const auto& c = s->cfg;
  const int64_t end = c.train.stop_at > 0 ? c.train.stop_at : c.train.steps;
  const auto mcfg = lt::to_model_config(c);
  const auto dense = lm::resolved_dense_layers(mcfg);
  lm::RopeCache rope_cache(mcfg.head_dim, mcfg.rope_theta);
  auto embed = module_at<torch::nn::EmbeddingImpl>(s->model, "embed_tokens");

  if (!blend_ckpt.empty()) {
    auto other = lt::load_trained_model(blend_ckpt);
    auto theirs = other.model->named_parameters();
    torch::NoGradGuard ng;
    for (auto& kv : s->model->named_parameters()) {
      const bool match = blend_pattern == "all" || kv.key().find(blend_pattern) != std::string::npos;
      if (match) kv.value().add_(blend_alpha * (theirs[kv.key()] - kv.value()));
    }
  }
  if (eval_cursor >= 0) {
    s->train_loader->seek(static_cast<uint64_t>(eval_cursor));
    auto batch = s->train_loader->next_batch(c.train.batch_size);
    nlohmann::json rec = {{"step", s->step}, {"cursor", eval_cursor}};
    for (const std::string v : {"dense", "lighthouse", "lighthouse-layer-1", "lighthouse-layer-2",
                                "lighthouse-mean"})
      rec[v] = variant_loss(s->model, c, batch, v);
    std::cout << rec.dump() << std::endl;
    return 0;
  }
  while (s->step < end) {
    const auto mode = lt::mode_at(c, s->step);
    nlohmann::json rec = {{"step", s->step + 1}, {"mode", lt::mode_name(mode)}};
    if ((s->step % every == 0 || s->step + 1 == dump) && mode == lm::AttentionMode::Lighthouse) {
      torch::NoGradGuard ng;
      const uint64_t cur = s->train_loader->cursor();
      auto batch = s->train_loader->next_batch(c.train.batch_size);  // [B, N + 1]
      s->train_loader->seek(cur);
      const int64_t N = c.train.context;
      auto inputs = batch.narrow(1, 0, N).contiguous();   // [B, N]
      auto targets = batch.narrow(1, 1, N).contiguous();  // [B, N]
      const bool dumping = s->step + 1 == dump;
      std::vector<at::Tensor> dumped;  // saved with torch::save
      if (dumping) dumped.push_back(inputs);
      for (const auto m : {lm::AttentionMode::Lighthouse, lm::AttentionMode::Dense}) {
        s->model->set_attention_mode(m);
        auto logits = s->model->forward(inputs);  // [B, N, V]
        if (dumping)
          dumped.push_back(torch::nn::functional::cross_entropy(
              logits.reshape({-1, logits.size(2)}), targets.reshape({-1}),
              torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone)));
        rec["loss_" + lt::mode_name(m)] =
            torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(2)}),
                                                 targets.reshape({-1}))
                .item<double>();
      }
      // Layer by layer along the Lighthouse-mode residual stream.
      auto rope = rope_cache.get(N, torch::kCPU, at::kFloat);
      at::Tensor h = embed->forward(inputs);  // [B, N, d]
      nlohmann::json layers = nlohmann::json::array(), logits = nlohmann::json::array();
      for (int64_t li = 0; li < c.model.n_layers; ++li) {
        auto layer = module_at<lm::DecoderLayerImpl>(s->model, "layers." + std::to_string(li));
        const bool lh = std::find(dense.begin(), dense.end(), li) == dense.end();
        if (lh) {
          auto attn = layer->self_attn;
          auto a = layer->input_layernorm(h);  // [B, N, d]
          const int64_t B = a.size(0), H = c.model.n_heads, Hkv = c.model.n_kv_heads,
                        D = c.model.head_dim;
          auto q = lm::apply_rope(attn->q_proj(a).view({B, N, H, D}), rope);
          auto k = lm::apply_rope(attn->k_proj(a).view({B, N, Hkv, D}), rope);
          auto v = attn->v_proj(a).view({B, N, Hkv, D});
          auto plan = lighthouse::plan(q, k, mcfg.lighthouse);
          auto o_lh = lighthouse::attention(q, k, v, plan, mcfg.lighthouse);  // [B, N, H, D]
          auto o_d = lighthouse::dense_attention(q, k, v);                     // [B, N, H, D]
          auto cnt = fan_in(plan, mcfg.lighthouse, N).permute({0, 2, 1});     // [B, N, H]
          // per-(position, head) output norms
          auto n_lh = o_lh.norm(2, -1);  // [B, N, H]
          auto n_d = o_d.norm(2, -1);    // [B, N, H]
          if (dumping) {
            dumped.push_back(cnt);
            dumped.push_back(n_lh);
            dumped.push_back(n_d);
            dumped.push_back(q.norm(2, -1));
            dumped.push_back(k.norm(2, -1));
            dumped.push_back(attn->o_proj(o_lh.reshape({B, N, H * D})).norm(2, -1));
            dumped.push_back(attn->o_proj(o_d.reshape({B, N, H * D})).norm(2, -1));
          }
          nlohmann::json by = nlohmann::json::array();
          for (int64_t f = 0; f <= mcfg.lighthouse.levels; ++f) {
            auto sel = cnt.eq(f);
            const int64_t n = sel.sum().item<int64_t>();
            if (n == 0) {
              by.push_back({{"fan_in", f}, {"frac", 0}});
              continue;
            }
            by.push_back({{"fan_in", f},
                          {"frac", double(n) / double(cnt.numel())},
                          {"norm_lh", n_lh.masked_select(sel).mean().item<double>()},
                          {"norm_dense", n_d.masked_select(sel).mean().item<double>()}});
          }
          layers.push_back({{"layer", li},
                            {"rms_o_lh", rms(o_lh)},
                            {"rms_o_dense", rms(o_d)},
                            {"rms_out_lh", rms(attn->o_proj(o_lh.reshape({B, N, H * D})))},
                            {"rms_out_dense", rms(attn->o_proj(o_d.reshape({B, N, H * D})))},
                            {"rms_v", rms(v)},
                            {"rel_diff", (o_lh - o_d).norm().item<double>() /
                                             o_d.norm().item<double>()},
                            {"by_fan_in", by}});
        }
        {
          auto a = layer->input_layernorm(h);
          auto attn = layer->self_attn;
          const int64_t B = a.size(0), H = c.model.n_heads, Hkv = c.model.n_kv_heads,
                        D = c.model.head_dim;
          auto q = lm::apply_rope(attn->q_proj(a).view({B, N, H, D}), rope);
          auto k = lm::apply_rope(attn->k_proj(a).view({B, N, Hkv, D}), rope);
          logits.push_back({{"layer", li},
                            {"max_logit", max_logit(q, k)},
                            {"max_qnorm", q.norm(2, -1).max().item<double>()},
                            {"max_knorm", k.norm(2, -1).max().item<double>()}});
        }
        h = layer->forward(h, rope, lh);
      }
      if (dumping) torch::save(dumped, dump_path);
      rec["layers"] = layers;
      rec["logits"] = logits;
    }
    const auto st = lt::train_step(*s);
    rec["loss"] = st.loss;
    rec["grad_norm"] = st.grad_norm;
    rec["lr"] = st.lr;
    std::cout << rec.dump() << std::endl;
  }
  return 0;
}
