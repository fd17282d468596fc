// Fixture of tests/python/test_export_hf.py: builds a tiny random GQA model with a fixed
// seed, exports it to OUT/model (Hugging Face layout) and writes random byte tokens with our
// logits (dense, or Lighthouse with --lighthouse) to OUT/io.safetensors ("tokens" [B, N]
// int64, "logits" [B, N, V] float32).
//
//   model_export_fixture OUT [--device cpu|cuda] [--bf16] [--seq-len N] [--lighthouse L,p,k,m]
//
// --lighthouse runs layers 1..n-1 with Lighthouse attention (levels L, pool p, topk k,
// tile_topk m; layer 0 stays dense) for the logits; the exported weights are the same. It feeds
// tests/python/test_hf_wrapper.py (lighthouse.hf against this model).
// --bf16 rounds the weights to bf16 values (so an fp32 reference can use the very same
// weights), exports them as bf16 and runs our model under the device's bf16 autocast. Exit status 3: CUDA requested but not available.
#include <ATen/autocast_mode.h>

#include <cstring>
#include <iostream>
#include <string>

#include "model/export.h"

using namespace lighthouse::model;

namespace {

// Larger-than-init random weights, so attention, RoPE and the norm weights all move the
// logits by O(1) and a layout mistake cannot hide below the tolerance.
void randomize(Llama& model, bool bf16_values) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) {
    if (p.dim() == 1) {
      p.uniform_(0.5, 1.5);
    } else {
      p.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(p.size(1))));
    }
    if (bf16_values) p.copy_(p.to(at::kBFloat16));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0]
              << " OUT [--device cpu|cuda] [--bf16] [--seq-len N] [--lighthouse L,p,k,m]\n";
    return 2;
  }
  const std::string out = argv[1];
  std::string device = "cpu";
  bool bf16 = false;
  int64_t seq_len = 48;
  std::string lighthouse;  // "L,p,k,m" or empty (dense)
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--device") && i + 1 < argc) {
      device = argv[++i];
    } else if (!std::strcmp(argv[i], "--bf16")) {
      bf16 = true;
    } else if (!std::strcmp(argv[i], "--seq-len") && i + 1 < argc) {
      seq_len = std::stoll(argv[++i]);
    } else if (!std::strcmp(argv[i], "--lighthouse") && i + 1 < argc) {
      lighthouse = argv[++i];
    } else {
      std::cerr << "unknown argument: " << argv[i] << "\n";
      return 2;
    }
  }
  if (device == "cuda" && !torch::cuda::is_available()) {
    std::cerr << "CUDA is not available\n";
    return 3;
  }
  try {
    ModelConfig cfg;
    cfg.d_model = 64;
    cfg.n_layers = 3;
    cfg.n_heads = 4;
    cfg.n_kv_heads = 2;
    cfg.head_dim = 16;
    cfg.ffn_hidden = 160;
    cfg.rope_theta = 500000.0;  // not the default: a config.json mistake would show
    cfg.norm_eps = 1e-6;
    if (!lighthouse.empty()) {
      int64_t* fields[] = {&cfg.lighthouse.levels, &cfg.lighthouse.pool, &cfg.lighthouse.topk,
                           &cfg.lighthouse.tile_topk};
      size_t pos = 0;
      for (int64_t* f : fields) {
        size_t used = 0;
        *f = std::stoll(lighthouse.substr(pos), &used);
        pos += used + 1;
      }
      cfg.dense_layers = {0};
    }
    torch::manual_seed(1234);
    Llama model(cfg);
    randomize(model, bf16);
    if (!lighthouse.empty()) model->set_attention_mode(AttentionMode::Lighthouse);
    const at::Tensor tokens =
        torch::randint(0, kVocab, {2, seq_len}, torch::kLong);  // [B, N]

    export_hf(model, out + "/model", bf16 ? at::kBFloat16 : at::kFloat, 4096);
    const torch::Device dev(device);
    model->to(dev);
    at::Tensor logits;  // [B, N, V]
    {
      torch::NoGradGuard no_grad;
      if (bf16) {
        at::autocast::set_autocast_dtype(dev.type(), at::kBFloat16);
        at::autocast::set_autocast_enabled(dev.type(), true);
      }
      logits = model(tokens.to(dev)).to(at::kCPU, at::kFloat);
      if (bf16) {
        at::autocast::set_autocast_enabled(dev.type(), false);
        at::autocast::clear_cache();
      }
    }
    save_safetensors(out + "/io.safetensors", {{"tokens", tokens}, {"logits", logits}});
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return 1;
  }
  return 0;
}
