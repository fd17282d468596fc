// Shared helpers of the model tests: a tiny GQA config whose Lighthouse settings are valid
// at N = 32, random byte tokens and parameter snapshots.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "model/llama.h"

namespace lighthouse::model::testing {

// 5 layers (default dense layers {0, 1, 3, 4}: layer 2 follows the mode), 4 heads, 2 KV heads.
inline ModelConfig tiny_config() {
  ModelConfig cfg;
  cfg.d_model = 32;
  cfg.n_layers = 5;
  cfg.n_heads = 4;
  cfg.n_kv_heads = 2;
  cfg.head_dim = 8;
  cfg.ffn_hidden = 48;
  cfg.lighthouse.levels = 2;  // N = 32: Nc = 16, T = 2, C = 8, S = 16 + 2 * 4 = 24
  cfg.lighthouse.pool = 2;
  cfg.lighthouse.topk = 4;
  cfg.lighthouse.tile_topk = 2;
  return cfg;
}

inline constexpr int64_t kTinyN = 32;

inline Llama make_model(const ModelConfig& cfg, uint64_t seed = 7) {
  torch::manual_seed(seed);
  return Llama(cfg);
}

inline at::Tensor random_tokens(int64_t B, int64_t N, uint64_t seed = 11) {
  torch::manual_seed(seed);
  return torch::randint(0, kVocab, {B, N}, torch::kLong);  // [B, N]
}

inline std::map<std::string, at::Tensor> snapshot(const Llama& model) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : model->named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

}  // namespace lighthouse::model::testing
