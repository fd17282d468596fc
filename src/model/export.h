// Hugging Face export: the model as `model.safetensors` in the LlamaForCausalLM layout plus
// `config.json`, so `transformers.LlamaForCausalLM.from_pretrained(dir)` loads it. RoPE uses
// the same rotate_half convention on both sides, so weights are copied without permutation.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "model/llama.h"
#include "model/safetensors.h"

namespace lighthouse::model {

// Hugging Face name of one of our parameter names ("layers.3.mlp.up_proj.weight" ->
// "model.layers.3.mlp.up_proj.weight"; "lm_head.weight" stays).
std::string hf_parameter_name(const std::string& name);

// config.json contents for cfg stored in dtype (float32, bfloat16 or float16).
nlohmann::json hf_config(const ModelConfig& cfg, at::ScalarType dtype,
                         int64_t max_position_embeddings);

// Writes dir/model.safetensors and dir/config.json (dir is created if missing). Weights are
// the model's current values (any attention mode: the mode is not a parameter) cast to dtype.
void export_hf(const Llama& model, const std::string& dir, at::ScalarType dtype = at::kFloat,
               int64_t max_position_embeddings = 131072);

}  // namespace lighthouse::model
